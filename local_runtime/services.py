"""The local stand-ins the functions reach: moto's server (AWS APIs) and an embedded PostgreSQL.

Each runs in a helper process of its own session that lives while its stdin is
open: stopping the runtime closes it, and so does the runtime's death.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from pathlib import Path

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


def start_moto(host: str = "127.0.0.1") -> tuple[HelperProcess, str]:
    # As a module from the repository root: it imports local_runtime.forgery.
    helper = HelperProcess(
        "moto", command=[sys.executable, "-m", "local_runtime._moto", host], cwd=HERE.parent
    )
    return helper, f"http://{host}:{int(helper.value)}"


def start_local_queue(database_url: str, host: str, account_id: str) -> tuple[HelperProcess, str]:
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
            "0",
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
