from layers_kit.conformance.cli import main

raise SystemExit(main())
