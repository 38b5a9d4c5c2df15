"""python -m local_queue --database-url URL [--host H] [--port N] [--until-stdin-closes]

Prints the endpoint URL on one line once it accepts requests. With
--until-stdin-closes it stops when its standard input closes (so a parent that dies,
even by kill -9, takes it along); otherwise on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from local_queue.server import QueueServer
from local_queue.service import ACCOUNT_ID, REGION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_queue", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-id", default=ACCOUNT_ID)
    parser.add_argument("--region", default=REGION)
    parser.add_argument("--until-stdin-closes", action="store_true")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    server = QueueServer(
        args.database_url, args.host, args.port, account_id=args.account_id, region=args.region
    ).start()
    print(server.endpoint_url, flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    if args.until_stdin_closes:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
