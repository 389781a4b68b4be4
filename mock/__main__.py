from mock.cli import main

raise SystemExit(main())
