"""``python -m domain.storage DATABASE_URL``: upgrade a database to the newest schema."""

from domain.storage.migrate import main

raise SystemExit(main())
