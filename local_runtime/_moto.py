"""moto's server on loopback, in a process of its own, for as long as its stdin stays open.

Run as `python -P _moto.py HOST`; prints the port it listens on. When the runtime
ends, even by kill -9, stdin closes and this process ends with it.
"""

import logging
import os
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
    server = ThreadedMotoServer(ip_address=sys.argv[1], port=0, verbose=False)
    server.start()
    print(server._server.server_port, flush=True)  # noqa: SLF001 - moto keeps the port there
    sys.stdin.read()  # until the runtime closes it, or dies
    # Nothing to keep (the runtime saved what was queued): no graceful shutdown to wait for.
    os._exit(0)


if __name__ == "__main__":
    main()
