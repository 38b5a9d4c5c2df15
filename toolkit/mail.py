"""The mail moto's SES captured, as `make mail` and the local console show it.

Local only: moto's server keeps every message sent (`GET /moto-api/data.json`, its
`ses` section); in AWS, mail goes to real inboxes and nothing keeps a copy.
"""

from __future__ import annotations

import html
import json
import re
import urllib.request


def captured(url: str) -> list[dict]:
    """Every message moto's SES holds, in the order sent."""
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=5) as response:  # noqa: S310 - a local URL
        data = json.load(response)
    # moto lists each backend's objects by model name; SES v2's simple sends are "Message".
    return list(data.get("ses", {}).get("Message", []))


def as_text(body: str) -> str:
    """The HTML part (the one moto keeps) as readable text."""
    text = re.sub(r"</p>", "\n\n", body)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
