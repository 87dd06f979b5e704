from edgechat_tui.cli.entry import main

raise SystemExit(main())
