"""Reading the archive of expired events back (sluice.retention.archive).

`python -m tools.archive read APP_ID DATE` prints a day's events back, one JSON
object a line (`make archive-read`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from sluice.retention.archive import ArchiveBucket

from tools import cli


def from_env() -> ArchiveBucket:
    """ARCHIVE_BUCKET, with boto3's usual configuration (AWS_ENDPOINT_URL for moto)."""
    import boto3
    from sluice.core.config import command_line_archive_bucket
    from sluice.core.errors import ConfigurationError

    try:
        bucket = command_line_archive_bucket()
    except ConfigurationError as exc:
        raise cli.AwsNotConfigured(f"{exc} (or start make dev)") from None
    with cli.aws_errors("S3"):
        return ArchiveBucket(boto3.client("s3"), bucket)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m tools.archive")
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser("read", help="print an app's archived events of one day")
    read.add_argument("app_id")
    read.add_argument("day", type=date.fromisoformat, help="YYYY-MM-DD (UTC, day received)")
    args = parser.parse_args(argv)

    def command() -> None:
        bucket = from_env()
        out = sys.stdout.buffer
        printed = 0
        with cli.aws_errors(f"the archive bucket {bucket.bucket!r}"):
            for line in bucket.read(args.app_id, args.day):
                out.write(line + b"\n")
                printed += 1
        out.flush()
        if not printed:
            # Empty output alone reads as "it worked"; say that the day holds nothing.
            raise cli.NothingArchived(
                f"nothing archived for {args.app_id} on {args.day} (UTC, by day received)"
            )

    return cli.run(parser.prog, command)


if __name__ == "__main__":
    sys.exit(main())
