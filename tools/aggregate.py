"""What the scheduled aggregate function does, from the command line (sluice.rollups.aggregate).

    python -m tools.aggregate run
    python -m tools.aggregate rebuild --from 2026-03-01 --to 2026-03-08 [--app APP_ID]

Both use DATABASE_URL.
"""

from __future__ import annotations

import argparse
import functools
import sys
from datetime import UTC, date, datetime

from sluice.core.config import DatabaseSettings
from sluice.core.db import Connection, Database
from sluice.core.errors import AppNotFound
from sluice.manage.manage_data import app_requires_key
from sluice.rollups.aggregate import ExpiredHistory, rebuild, run

from tools import cli


def _app_exists(conn: Connection, app_id: str) -> bool:
    # The operator's role reads apps (the aggregate function's role does not).
    return app_requires_key(conn, app_id) is not None


def _moment(text: str) -> datetime:
    """An ISO 8601 date or date-time; UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m tools.aggregate")
    commands = parser.add_subparsers(dest="command", required=True)
    once = commands.add_parser("run", help="count what is new, as the scheduled function does")
    once.add_argument("--chunk-size", type=int, default=20_000)
    again = commands.add_parser("rebuild", help="recount the rollups of a time range")
    again.add_argument("--from", dest="start", type=_moment, required=True)
    again.add_argument("--to", dest="end", type=_moment, required=True)
    again.add_argument("--app", dest="app_id")
    again.add_argument(
        "--force", action="store_true", help="recount even days whose events have expired"
    )
    args = parser.parse_args(argv)
    if args.command == "rebuild" and args.end <= args.start:
        parser.error("--to must be after --from")

    def command() -> int:
        database = Database(DatabaseSettings(url=cli.database_url()))
        try:
            with cli.database_errors():
                if args.command == "run":
                    result = run(database, args.chunk_size)
                    print(
                        f"counted {result.counted} new events ({result.scanned} read,"
                        f" {result.chunks} chunks); complete through {result.complete_through}"
                    )
                    return 0
                if args.app_id and not database.run(
                    functools.partial(_app_exists, app_id=args.app_id)
                ):
                    # An unknown id would "rebuild" nothing and report success.
                    raise AppNotFound(f"no app with the id {args.app_id!r}")
                try:
                    pairs = rebuild(database, args.start, args.end, args.app_id, force=args.force)
                except ExpiredHistory as exc:
                    raise cli.HistoryExpired(f"not rebuilt: {exc}") from None
                print(f"rebuilt {pairs} app-days")
                return 0
        finally:
            database.close()

    return cli.run(parser.prog, command)


if __name__ == "__main__":
    sys.exit(main())
