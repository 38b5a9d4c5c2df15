"""The database crashes and restarts under a running `make dev`: every answer is 202 or 503.

PostgreSQL's own crash recovery is the restart: one backend killed with SIGKILL
makes the postmaster end every session, recover and accept connections again,
which is what a kept connection sees of a database that restarted. Each ingest
and store worker keeps such a connection; the first use after the crash must
reconnect, not fail with a 500.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import uuid
from urllib.parse import urlsplit

import psycopg2
import pytest

from loadtest.__main__ import create_load_app, stored_times
from tests.e2e.test_make_dev import Dev
from tests.support import wait_for


def _post(api_url: str, app_id: str, key: str, message_id: str) -> int:
    parts = urlsplit(api_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        body = json.dumps({"eventName": "user_login", "userId": 1, "messageId": message_id})
        conn.request(
            "POST",
            f"/api/logs/{app_id}",
            body,
            {"X-Api-Key": key, "Content-Type": "application/json"},
        )
        return conn.getresponse().status
    finally:
        conn.close()


def _crash(database_url: str) -> None:
    """Kills one backend; returns once the postmaster has ended the other sessions too."""
    victim, witness = psycopg2.connect(database_url), psycopg2.connect(database_url)
    with victim.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        (pid,) = cur.fetchone()
    os.kill(pid, signal.SIGKILL)

    def witness_ended() -> bool:
        try:
            with witness.cursor() as cur:
                cur.execute("SELECT 1")
        except psycopg2.Error:
            return True
        return False

    wait_for(witness_ended, timeout=30)
    victim.close()
    witness.close()


def _accepting(database_url: str) -> bool:
    try:
        psycopg2.connect(database_url, connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def test_a_database_crash_restart_under_load_answers_202_or_503_and_loses_nothing(dev_state):
    dev = Dev(dev_state)
    try:
        dev.wait_for_line(r"^Ctrl-C stops")
        running = json.loads((dev_state / "runtime.json").read_text())
        api_url, database_url = running["api_url"], running["database_url"]
        warm_app, warm_key = create_load_app(database_url, "warm")
        answers: dict[str, int] = {}

        def send(app_id: str, key: str, count: int) -> None:
            for _ in range(count):
                message_id = uuid.uuid4().hex
                answers[message_id] = _post(api_url, app_id, key, message_id)

        # Given a stack whose ingest and store workers hold warm connections
        send(warm_app, warm_key, 20)
        assert set(answers.values()) == {202}
        wait_for(lambda: len(stored_times(database_url, warm_app)) == 20, timeout=30)

        # When the database crashes and recovers while events keep arriving
        load = threading.Thread(target=send, args=(warm_app, warm_key, 60))
        load.start()
        _crash(database_url)
        try:
            wait_for(lambda: _accepting(database_url), timeout=120)
        except pytest.fail.Exception:
            log = dev_state / "pgdata" / "log"
            pytest.fail("PostgreSQL did not come back:\n" + log.read_text()[-5_000:])
        load.join()
        # ...and an app no worker has cached makes every worker use its kept connection
        new_app, new_key = create_load_app(database_url, "new")
        before = set(answers)
        send(new_app, new_key, 40)

        # Then no request got a 500; after the restart every one was accepted
        assert set(answers.values()) <= {202, 503}, sorted(set(answers.values()))
        assert {answers[m] for m in set(answers) - before} == {202}
        # And every acknowledged event is stored
        acknowledged = {m for m, status in answers.items() if status == 202}
        wait_for(
            lambda: (
                acknowledged
                <= set(stored_times(database_url, warm_app))
                | set(stored_times(database_url, new_app))
            ),
            timeout=90,
        )
    finally:
        dev.interrupt()
