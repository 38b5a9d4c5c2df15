"""`python -m tools.migrate` applies the migrations to DATABASE_URL (that is `make migrate`),
as the deploy-time migration function does (sluice.schema.migrate).
"""

from __future__ import annotations

import sys

from sluice.schema.migrate import apply_migrations, default_directory

from tools import cli


def main() -> int:

    def migrate() -> None:
        conn = cli.connect()
        try:
            with cli.database_errors():
                names = apply_migrations(conn, default_directory())
        finally:
            conn.close()
        print("applied: " + ", ".join(names) if names else "schema is up to date")

    return cli.run("make migrate", migrate)


if __name__ == "__main__":
    sys.exit(main())
