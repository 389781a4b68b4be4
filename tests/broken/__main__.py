"""`python -m tests.broken --broken NAME [layers-mock options]`: serve one broken variant."""

import sys

from tests.broken.variants import VARIANTS

args = sys.argv[1:]
i = args.index("--broken")
name = args[i + 1]
del args[i : i + 2]
VARIANTS[name].patch()

from layers_kit.mock.cli import main  # noqa: E402 - after the patch, which must precede the app's import

raise SystemExit(main(args))
