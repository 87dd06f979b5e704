from edgechat_tui.cli import main

raise SystemExit(main())
