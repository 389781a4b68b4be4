import sys

from layers_kit.contract.cli import main

sys.exit(main())
