from .schema import main

raise SystemExit(main())
