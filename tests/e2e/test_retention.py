"""Retention on the local runtime: expired events go to moto's S3 and come back by the read command.

The schedules are fired through /_local/schedules, as `curl -X POST` would; the
archive is read back by `python -m tools.archive read` in its own process, against
the runtime's moto server, as a user of `make archive-read` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import REPO_ROOT
from tests.e2e.test_sluice import post, stored
from tests.local_runtime.conftest import http
from tests.support import make_app

BUCKET = json.loads((REPO_ROOT / "local-env.json").read_text())["Environment"]["MaintainFunction"][
    "ARCHIVE_BUCKET"
]


def fire(sluice, function: str) -> dict:
    status, _, body = http("POST", f"{sluice.api_url}/_local/schedules/{function}/Schedule")
    assert status == 200, body
    return json.loads(body)["result"]


def test_expired_events_are_archived_to_s3_and_read_back(sluice, db):
    # Given an app that keeps events one day, with events received three days ago...
    app_id, key = make_app(db)
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    received = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    old_ids = [str(uuid.uuid4()) for _ in range(3)]
    with db.cursor() as cur:
        cur.execute("UPDATE apps SET retention_days = 1 WHERE app_id = %s", (app_id,))
        for n, event_id in enumerate(old_ids):
            cur.execute(
                "INSERT INTO events (event_id, app_id, event_name, payload, status, occurred_at,"
                " received_at) VALUES (%s, %s, 'old', %s, 'valid', %s, %s)",
                (event_id, app_id, json.dumps({"eventName": "old", "n": n}), received, received),
            )
    # ...and one sent now through the API
    status, _ = post(sluice, f"/api/logs/{app_id}", {"eventName": "new"}, key)
    assert status == 202
    stored(db, app_id, 4)

    # When the rollups have counted them and the maintain schedule fires
    assert fire(sluice, "AggregateFunction")["caught_up"] is True
    result = fire(sluice, "MaintainFunction")

    # Then the old events left the database and only the new one is kept
    assert result["archived_events"] >= 3 and result["finished"] is True
    with db.cursor() as cur:
        cur.execute("SELECT event_name FROM events WHERE app_id = %s", (app_id,))
        assert cur.fetchall() == [("new",)]
    # And the read command prints them back from moto's S3
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": sluice.aws_endpoint_url,
        "ARCHIVE_BUCKET": BUCKET,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    read = subprocess.run(  # noqa: S603 - this interpreter, a module of this repository
        [sys.executable, "-m", "tools.archive", "read", app_id, day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    lines = [json.loads(line) for line in read.stdout.splitlines()]
    assert sorted(line["event_id"] for line in lines) == sorted(old_ids)
    assert sorted(json.loads(line["payload"])["n"] for line in lines) == [0, 1, 2]
