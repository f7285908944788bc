from pfswatchd.cli import main

raise SystemExit(main())
