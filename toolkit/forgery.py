"""Refuses requests a web page could have made: the guard of every local-only HTTP endpoint.

The runtime's `/_local/...` endpoints, moto's server and local_queue listen on
loopback and check no credentials, so any page open in the developer's browser
could reach them: a cross-site `<form>` or `fetch(..., {mode: "no-cors"})` POST is
sent without asking (a "simple" request: no CORS preflight), and a page whose
name is re-pointed at 127.0.0.1 (DNS rebinding) even reads the answers. Their real
clients (curl, boto3, the runtime itself) send none of what a browser adds, so a
request is refused when any of these holds:

- `Host` is not this server's address (127.0.0.1, localhost, [::1] or the address
  it was bound to, with its port): a rebound page's requests carry the page's own
  name, and nothing else can reach the server under another one;
- `Origin` is present and is not this server's own origin: browsers send it on
  every cross-origin request but simple GETs (and on every POST); `Origin: null`
  (sandboxed frames, `file:` pages) is foreign too;
- `Sec-Fetch-Site` is `cross-site` or `same-site` (which includes another port of
  localhost): what current browsers send on every request, GETs such as
  `<img src>` included, where no Origin is;
- with `json_types`, a request with a body or a `Content-Type` whose type is not one
  of them: a page can send only form and `text/plain` bodies without a preflight,
  the safety net for a browser that sends neither header above.

A refusal never carries CORS headers, and these servers never answer a preflight
with any, so a page cannot be granted a read of the answer either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
JSON = frozenset({"application/json"})


def own_hosts(bind_host: str, port: int) -> frozenset[str]:
    """Every `Host` header value under which this server is legitimately reached."""
    names = {*LOOPBACK_NAMES, f"[{bind_host}]" if ":" in bind_host else bind_host}
    return frozenset(f"{name}:{port}" for name in names)


def refusal(
    method: str,
    headers: Mapping[str, str],
    body_length: int,
    hosts: Collection[str],
    json_types: Collection[str] | None = None,
) -> str | None:
    """Why the request must be refused, or None. `headers` has lower-case names."""
    host = headers.get("host")
    # HTTP/1.0 clients may leave Host out; a browser never does.
    if host is not None and host.lower() not in hosts:
        return f"Host {host!r} is not this server"
    origin = headers.get("origin")
    if origin is not None and origin.lower().removeprefix("http://") not in hosts:
        return f"Origin {origin!r} is not this server's"
    if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return "a cross-site request (Sec-Fetch-Site)"
    if json_types is not None and method not in ("GET", "HEAD", "OPTIONS"):
        content_type = headers.get("content-type")
        mime = (content_type or "").split(";")[0].strip().lower()
        if (body_length or content_type is not None) and mime not in json_types:
            return f"Content-Type {content_type!r}: send JSON"
    return None
