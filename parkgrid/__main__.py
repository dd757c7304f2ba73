from parkgrid.cli import main

raise SystemExit(main())
