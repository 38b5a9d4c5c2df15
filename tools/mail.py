"""Prints the email `make dev` has sent: what moto's SES captured, newest last.

Local only: it reads moto's server (`GET /moto-api/data.json`, its `ses` section) at
AWS_ENDPOINT_URL, which `make mail` takes from the running `make dev` (`python -m
local_runtime env`). In AWS, mail goes to real inboxes and nothing keeps a copy.
"""

from __future__ import annotations

import argparse
import os
import sys

from toolkit.mail import as_text, captured
from tools import cli


def endpoint() -> str:
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    raise cli.AwsNotConfigured("make dev is not running: start it first (or set AWS_ENDPOINT_URL)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", help="only mail to this address")
    parser.add_argument("--last", type=int, default=10, help="how many to show (default 10)")
    args = parser.parse_args(argv)
    return cli.run("make mail", lambda: show(args))


def show(args: argparse.Namespace) -> None:
    url = endpoint()
    try:
        messages = captured(url)
    except (OSError, ValueError) as exc:  # URLError is an OSError; a page that is not JSON
        reason = getattr(exc, "reason", None) or exc
        raise cli.AwsUnreachable(
            f"no moto server answers at {url} ({reason}): is make dev running?"
        ) from None
    if args.to:
        wanted = args.to.strip().lower()
        messages = [m for m in messages if wanted in m["destinations"].get("ToAddresses", [])]
    for message in messages[-args.last :]:
        to = message.get("destinations", {}).get("ToAddresses", [])
        print(f"--- to {', '.join(to)} from {message.get('source')}")
        print(f"Subject: {message.get('subject')}\n")
        print(as_text(message.get("body", "")) + "\n")
    if not messages:
        print("no mail yet")


if __name__ == "__main__":
    sys.exit(main())
