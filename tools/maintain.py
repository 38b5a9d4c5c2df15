"""What the scheduled maintain function does, once, from the command line.

`python -m tools.maintain run`: one run of sluice.retention.maintain against
DATABASE_URL and ARCHIVE_BUCKET (`make maintain`).
"""

from __future__ import annotations

import argparse
import sys

from sluice.core.clock import SystemClock
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.retention.maintain import run

from tools import archive, cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.maintain")
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)

    def command() -> None:
        bucket = archive.from_env()
        database = Database(DatabaseSettings(url=cli.database_url()))
        try:
            with cli.database_errors(), cli.aws_errors(f"the archive bucket {bucket.bucket!r}"):
                result = run(database, bucket, SystemClock().now())
        finally:
            database.close()
        print(result)

    return cli.run(parser.prog, command)


if __name__ == "__main__":
    sys.exit(main())
