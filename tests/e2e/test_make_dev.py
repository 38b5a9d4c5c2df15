"""`make dev` as a developer meets it: `python -m local_runtime` in a terminal, Ctrl-C, start again.

The embedded PostgreSQL keeps its data in the state folder, so a restart finds
the demo app and the events stored before; the banner's curl line works as printed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading

import psycopg2
import pytest

from tests.e2e.conftest import REPO_ROOT
from tests.support import wait_for


class Dev:
    """The runtime as a child process; its output is collected line by line."""

    def __init__(self, state_dir, **variables: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | variables
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            # -v: the helpers' logs too, so a failure shows why PostgreSQL or moto did not start
            [
                sys.executable,
                "-m",
                "local_runtime",
                "-v",
                "--port",
                "0",
                "--state-dir",
                str(state_dir),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_for_line(self, pattern: str, timeout: float = 120) -> re.Match:
        def found() -> re.Match | None:
            assert self.process.poll() is None, "".join(self.output)
            return next((m for line in self.output if (m := re.search(pattern, line))), None)

        return wait_for(found, timeout=timeout)

    def interrupt(self) -> str:
        self.process.send_signal(signal.SIGINT)
        # (the drain takes up to 10 s, stopping PostgreSQL more on a busy machine)
        assert self.process.wait(120) == 0, "".join(self.output)
        return "".join(self.output)


def _run_curl(line: str) -> str:
    args = shlex.split(line)
    assert args[0] == "curl"
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run(  # noqa: S603 - the banner's own command
        [*args, "--silent"], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def _count(database_url: str) -> int:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE status = 'valid'")
        return cur.fetchone()[0]


def test_the_printed_curl_line_stores_an_event_and_a_restart_keeps_it(dev_state):
    # Given `make dev` started from nothing (a new embedded PostgreSQL, migrations)
    dev = Dev(dev_state)
    dev.wait_for_line(r"^Ctrl-C stops")
    curl = dev.wait_for_line(r"^\s+(curl -i .*)$").group(1)
    app_id = dev.wait_for_line(r"demo app\s+(\S+)").group(1)
    database_url = dev.wait_for_line(r"DATABASE_URL='(.*)' \.venv/bin/python -m").group(1)

    # When the curl line it printed is run
    reply = _run_curl(curl)

    # Then the event is accepted and stored
    assert reply.startswith("HTTP/1.1 202")
    wait_for(lambda: _count(database_url) == 1)
    assert "stopped; queued messages stay in local_queue" in dev.interrupt()

    # And after Ctrl-C and a new start from a shell that took the banner's DATABASE_URL
    # (which once made the runtime switch databases silently and fail), the data and
    # the demo app are still there
    again = Dev(dev_state, DATABASE_URL=database_url)
    again.wait_for_line(r"^Ctrl-C stops")
    assert again.wait_for_line(r"DATABASE_URL is set in this shell; the runtime does not use it")
    assert again.wait_for_line(r"demo app\s+(\S+)").group(1) == app_id
    assert _count(database_url) == 1
    assert _run_curl(again.wait_for_line(r"^\s+(curl -i .*)$").group(1)).startswith("HTTP/1.1 202")
    wait_for(lambda: _count(database_url) == 2)
    again.interrupt()
