from genea_automate.cli import main

raise SystemExit(main())
