"""moto's server on loopback, in a process of its own, for as long as its stdin stays open.

Run as `python -m local_runtime._moto HOST [PORT]` (0, the default, picks one); prints
the port it listens on. When the runtime ends, even by kill -9, stdin closes and this
process ends with it.

moto's server answers any Origin with permissive CORS and checks no credentials, so
any page in the developer's browser could call every AWS API it serves. Here its
global CORS is off (its own switch, read at import) and every request passes
toolkit.forgery's guard first; boto3 sends none of what it refuses.
"""

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"  # before moto reads its settings

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from toolkit import forgery

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def refuse_forged(app: Wsgi, bind_host: str) -> Wsgi:
    """`app`, except for requests a web page could have made, which get a 403.

    No content-type rule: moto serves the query protocol's form-encoded bodies too.
    """

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        hosts = forgery.own_hosts(bind_host, int(environ["SERVER_PORT"]))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        refused = forgery.refusal(environ["REQUEST_METHOD"], headers, length, hosts)
        if refused is None:
            return app(environ, start_response)
        body = json.dumps({"message": f"Refused: {refused}. moto here takes no browser requests."})
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body.encode()]

    return guarded


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
    host = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # the same port when restarted
    # What moto's ThreadedMotoServer does, with the guard around its application.
    app = refuse_forged(DomainDispatcherApplication(create_backend_app), host)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(server.server_port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the runtime closes it, or dies
    # Nothing to keep (the runtime saved what was queued): no graceful shutdown to wait for.
    os._exit(0)


if __name__ == "__main__":
    main()
