"""``python -m app COMMAND``: ``serve`` runs the service (``app/server/serve.py``), ``worker`` runs media
jobs (``app/worker.py``), ``migrate`` and ``reindex`` keep the catalog (``app/admin.py``), ``upload``
uploads (``app/cli.py``)."""

import sys

if sys.argv[1:2] == ["serve"]:
    from app.server.serve import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["worker"]:
    from app.worker import main as worker

    raise SystemExit(worker())

if sys.argv[1:2] in (["migrate"], ["reindex"]):
    from app.admin import main as admin

    raise SystemExit(admin(sys.argv[1]))

from app.cli import main  # noqa: E402

raise SystemExit(main())
