"""A deleted app's archive when S3 refuses some deletes (issue 24, item 8).

`DeleteObjects` answers 200 with an `Errors` list for the objects it did not delete
(AccessDenied from a bucket policy, InternalError, ...). The refused objects stay; the
app stays recorded so the next run tries them again; the run names how many and why,
then fails, so `MaintainErrorsAlarm` fires.

S3 is moto's, behind a door that refuses the deletes of chosen keys, as a bucket policy
would: the other keys of the same request are deleted for real.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from sluice.core.config import MaintainSettings
from sluice.retention import archive, maintain

import functions.maintain.app as maintain_app
from tests.retention.conftest import BUCKET

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
GONE = "app_gone"


class RefusingS3:
    """moto's S3, but DeleteObjects refuses the keys in `refused` as S3 reports it."""

    def __init__(self, client: Any, refused: set[str], code: str = "AccessDenied") -> None:
        self.client = client
        self.refused = refused
        self.code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete_objects(self, *, Bucket: str, Delete: dict) -> dict:
        allowed = [o for o in Delete["Objects"] if o["Key"] not in self.refused]
        answer = self.client.delete_objects(Bucket=Bucket, Delete={**Delete, "Objects": allowed})
        errors = [
            {"Key": o["Key"], "Code": self.code, "Message": "Access Denied"}
            for o in Delete["Objects"]
            if o["Key"] in self.refused
        ]
        return {**answer, "Errors": answer.get("Errors", []) + errors}


def archive_of(s3, app_id: str, days: int) -> list[str]:
    """One archived object a day for `days` days; their keys."""
    keys = [
        archive.object_key(app_id, date(2026, 3, 1) + timedelta(days=n), 0) for n in range(days)
    ]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    return keys


def deleted_app(db, app_id: str, deleted_at: datetime) -> None:
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO deleted_apps (app_id, deleted_at) VALUES (%s, %s)", (app_id, deleted_at)
        )


def recorded(db, app_id: str) -> bool:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM deleted_apps WHERE app_id = %s", (app_id,))
        return cur.fetchone() == (1,)


def test_delete_app_counts_only_what_s3_deleted(bucket):
    # Given five archived objects, two of which S3 refuses to delete
    keys = archive_of(bucket.s3, GONE, 5)
    door = archive.ArchiveBucket(RefusingS3(bucket.s3, set(keys[:2])), BUCKET)

    # When the app's archive is deleted
    deletion = door.delete_app(GONE)

    # Then three count as deleted, two as refused with S3's code, and those two remain
    assert (deletion.deleted, deletion.refused) == (3, {"AccessDenied": 2})
    assert sorted(bucket.keys(f"events/app_id={GONE}/")) == keys[:2]


def test_a_refused_delete_keeps_the_app_for_the_next_run_and_says_so(
    db, maintainer, bucket, caplog
):
    # Given an app deleted long enough ago to be forgotten, its archive partly undeletable
    keys = archive_of(bucket.s3, GONE, 3)
    deleted_app(db, GONE, NOW - timedelta(days=30))
    door = archive.ArchiveBucket(RefusingS3(bucket.s3, {keys[0]}), BUCKET)

    # When a run removes it
    caplog.set_level(logging.WARNING)
    result = maintain.run(maintainer, door, NOW)

    # Then the refused object stays, the app stays recorded, and the run reports it
    assert list(bucket.keys(f"events/app_id={GONE}/")) == [keys[0]]
    assert recorded(db, GONE)
    assert (result.deleted_apps_done, result.archive_objects_left) == (0, 1)
    (warning,) = [r for r in caplog.records if r.getMessage() == "archive objects not deleted"]
    assert (warning.app_id, warning.objects, warning.codes) == (GONE, 1, ["AccessDenied"])

    # And once S3 lets it, the next run deletes the rest and forgets the app
    again = maintain.run(maintainer, bucket, NOW)
    assert list(bucket.keys(f"events/app_id={GONE}/")) == []
    assert not recorded(db, GONE)
    assert (again.deleted_apps_done, again.archive_objects_left) == (1, 0)


class Context:
    function_name = "sluice-dev-MaintainFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:maintain"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def test_the_maintain_function_fails_when_an_archive_was_not_deleted(
    db, database_url, maintainer, bucket, monkeypatch
):
    # Given the function configured as the template does, S3 refusing one delete
    keys = archive_of(bucket.s3, GONE, 2)
    deleted_app(db, GONE, datetime.now(UTC) - timedelta(days=30))
    settings = MaintainSettings.from_env(
        {"DATABASE_URL": database_url, "DB_USER": "sluice_maintain", "ARCHIVE_BUCKET": BUCKET}
    )
    door = archive.ArchiveBucket(RefusingS3(boto3.client("s3"), {keys[1]}), BUCKET)
    monkeypatch.setattr(maintain_app, "settings", lambda: settings)
    monkeypatch.setattr(maintain_app, "database", lambda: maintainer)
    monkeypatch.setattr(maintain_app, "bucket", lambda: door)

    # When the schedule invokes it, then the invocation fails (MaintainErrorsAlarm counts
    # Lambda's Errors), after the rest of the run was done
    with pytest.raises(archive.ArchiveNotDeleted, match="1 archived object"):
        maintain_app.handler({}, Context())
    assert list(bucket.keys(f"events/app_id={GONE}/")) == [keys[1]]
    assert recorded(db, GONE)
