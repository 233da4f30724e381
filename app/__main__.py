"""``python -m app``: the command-line tools (see ``app/cli.py``)."""

from app.cli import main

raise SystemExit(main())
