from symposia.cli import main

raise SystemExit(main())
