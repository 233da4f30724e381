"""``python -m app COMMAND``: ``serve`` runs the service (``app/server/serve.py``), ``upload`` uploads (``app/cli.py``)."""

import sys

if sys.argv[1:2] == ["serve"]:
    from app.server.serve import main

    raise SystemExit(main(sys.argv[2:]))

from app.cli import main  # noqa: E402

raise SystemExit(main())
