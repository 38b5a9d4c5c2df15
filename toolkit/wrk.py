"""The same load as the design Sluice replaces was measured with: wrk, one event per request.

wrk (a C client) keeps its own cost off the two cores far better than the Python
driver can at many hundreds of requests per second, so single-event comparisons
with another stack on the same machine use it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("one_event.lua")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return round(float(number) * _UNITS[unit], 2)


def parse(output: str) -> dict:
    """wrk's --latency report as figures: requests, non-2xx answers, req/s, percentiles (ms)."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": requests,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "latency_ms": {
            f"p{p}": _ms(m.group(1))
            for p in (50, 75, 90, 99)
            if (m := re.search(rf"^\s+{p}%\s+(\S+)", output, re.MULTILINE))
        },
    }


def run(url: str, app_id: str, api_key: str, duration: float, connections: int) -> dict:
    """Runs wrk against POST /api/logs/{app_id}; returns parse()'s figures and start/end times."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    command = [
        wrk,
        "-t",
        "2",
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--latency",
        "-s",
        str(SCRIPT),
        f"{url}/api/logs/{app_id}",
    ]
    start = time.time()
    done = subprocess.run(  # noqa: S603 - wrk, with our own arguments
        command,
        env={**os.environ, "SLUICE_API_KEY": api_key},
        capture_output=True,
        text=True,
        check=True,
    )
    return {**parse(done.stdout), "start": start, "end": time.time(), "output": done.stdout}
