"""The local stand-ins the functions reach: moto's server (AWS APIs) and an embedded PostgreSQL.

Each runs in a helper process of its own session that lives while its stdin is
open: stopping the runtime closes it, and so does the runtime's death. A helper
that dies while the runtime runs is started again at the same address (Supervisor),
so a `kill -9` of local_queue costs a second of 503s, not the rest of the session.
"""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("local_runtime")
HERE = Path(__file__).parent


class HelperProcess:
    def __init__(
        self,
        script: str,
        *args: str,
        start_timeout: float = 60.0,
        command: list[str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 15.0,
    ) -> None:
        self.name = script
        self.stop_timeout = stop_timeout
        self.process = subprocess.Popen(  # noqa: S603 - our own helper scripts
            command or [sys.executable, "-P", str(HERE / script), *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        first: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(first,), daemon=True).start()
        threading.Thread(target=self._pass_stderr, daemon=True).start()
        try:
            line = first.get(timeout=start_timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{script} did not start within {start_timeout:.0f} s") from None
        if line is None:
            raise RuntimeError(f"{script} exited with status {self.process.wait()}")
        self.value = line

    def _read(self, first: queue.Queue) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        first.put(line.strip() if line else None)

    def _pass_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            log.debug("%s | %s", self.name, line.rstrip())

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(self.stop_timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def start_moto(host: str = "127.0.0.1", port: int = 0) -> tuple[HelperProcess, str]:
    # As a module from the repository root: it imports toolkit.forgery.
    helper = HelperProcess(
        "moto",
        command=[sys.executable, "-m", "local_runtime._moto", host, str(port)],
        cwd=HERE.parent,
    )
    return helper, f"http://{host}:{int(helper.value)}"


def start_local_queue(
    database_url: str, host: str, account_id: str, port: int = 0
) -> tuple[HelperProcess, str]:
    """The durable SQS-compatible queue (local_queue/), its messages in PostgreSQL."""
    helper = HelperProcess(
        "local_queue",
        command=[
            sys.executable,
            "-m",
            "local_queue",
            "--database-url",
            database_url,
            "--host",
            host,
            "--port",
            str(port),
            "--account-id",
            account_id,
            "--until-stdin-closes",
        ],
        cwd=HERE.parent,
    )
    return helper, helper.value


def start_postgres(data_dir: Path) -> tuple[HelperProcess, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    # Killed while stopping, it would leave PostgreSQL running and the next start
    # failing: give it what `pg_ctl -w stop` may take (60 s) on a busy machine.
    helper = HelperProcess("_postgres.py", str(data_dir), stop_timeout=75.0)
    return helper, helper.value


def ensure_database(server_url: str, name: str) -> str:
    """The URL of database `name` on the server, created if missing."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def answers_tcp(url: str) -> Callable[[], None]:
    """A probe: something accepts connections at the URL's address (OSError if not)."""
    parts = urlsplit(url)

    def probe() -> None:
        socket.create_connection((parts.hostname, port_of(url)), timeout=1).close()

    return probe


def answers_sql(url: str) -> Callable[[], None]:
    """A probe: the PostgreSQL at `url` accepts a session."""

    def probe() -> None:
        import psycopg2

        psycopg2.connect(url, connect_timeout=2).close()

    return probe


@dataclass
class Helper:
    """A helper process the runtime keeps alive.

    `launch` starts it again at the same address (same port, same data), so the
    functions' clients and local_queue's messages find it where they left it.
    """

    name: str
    url: str
    process: HelperProcess
    launch: Callable[[], HelperProcess]
    probe: Callable[[], None]
    after_restart: Callable[[], object] | None = None  # e.g. moto's setup, lost with it
    restarts: int = 0
    next_attempt: float = field(default=0.0, repr=False)

    def state(self) -> str:
        """ok, restarting (the process exited) or not answering (alive, but no answer)."""
        if self.process.process.poll() is not None:
            return "restarting"
        try:
            self.probe()
        except Exception:  # any failure to answer is "not answering"
            return "not answering"
        return "ok"


class Supervisor:
    """Watches the helpers and starts again any that exits, saying so in the log."""

    def __init__(self, helpers: list[Helper], interval: float = 0.25) -> None:
        self.helpers = helpers
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="helper-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Before the helpers are stopped, so none is started again on the way out."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def health(self) -> dict[str, str]:
        return {helper.name: helper.state() for helper in self.helpers}

    def _watch(self) -> None:
        while not self._stopping.wait(self.interval):
            for helper in self.helpers:
                if helper.process.process.poll() is not None and not self._stopping.is_set():
                    self._restart(helper)

    def _restart(self, helper: Helper) -> None:
        if time.monotonic() < helper.next_attempt:
            return
        if helper.next_attempt == 0.0:
            log.warning(
                "%s exited (status %s): starting it again at %s",
                helper.name,
                helper.process.process.returncode,
                helper.url,
            )
        try:
            helper.process = helper.launch()
            if helper.after_restart is not None:
                helper.after_restart()
        except Exception as exc:  # keep trying; the log says why
            # Its port may still be held, or PostgreSQL may be down too: try again soon.
            helper.next_attempt = time.monotonic() + 2.0
            log.warning("%s did not start again: %s; next try in 2 s", helper.name, exc)
            return
        helper.next_attempt = 0.0
        helper.restarts += 1
        log.warning("%s restarted at %s (restart %d)", helper.name, helper.url, helper.restarts)
