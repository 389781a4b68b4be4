from layers_kit.mock.cli import main

raise SystemExit(main())
