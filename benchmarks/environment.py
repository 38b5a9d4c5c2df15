"""What the benchmarks run against: a real PostgreSQL (DATABASE_URL or embedded) and
a migrated database of their own, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg2
from sluice.store.events_table import WRITTEN

REPO_ROOT = Path(__file__).resolve().parents[1]

# A typical event and its rule: 5 properties, one nested object, an enum, a format.
TYPICAL_RULE = {
    "type": "object",
    "required": ["eventName", "userId", "method"],
    "properties": {
        "eventName": {"type": "string"},
        "userId": {"type": "integer", "minimum": 1},
        "method": {"enum": ["password", "sso", "otp"]},
        "email": {"type": "string", "format": "email"},
        "device": {
            "type": "object",
            "properties": {"os": {"type": "string"}, "version": {"type": "string"}},
            "required": ["os"],
        },
    },
}


def typical_event(i: int) -> dict:
    return {
        "eventName": "user_login",
        "userId": i + 1,
        "method": "password",
        "email": f"user{i}@example.com",
        "device": {"os": "ios", "version": "17.2"},
    }


def typical_queued_event(app_id: str, i: int, now: datetime, message_id: str | None = None):
    """The typical event as ingest queues it."""
    import orjson
    from sluice.queued_events import QueuedEvent
    from uuid_utils.compat import uuid7

    return QueuedEvent(
        event_id=uuid7(),
        app_id=app_id,
        event_name="user_login",
        payload=orjson.dumps(typical_event(i)).decode(),  # the client's JSON text
        status="valid",
        validation_errors=None,
        message_id=message_id,
        client_timestamp=now,
        sent_at=now,
        occurred_at=now,
        received_at=now,
    )


def copy_line(row: dict[str, str]) -> str:
    """A row of the events table in COPY's text format, its values in the order that
    sluice.store.events_data.COPY_EVENTS names the columns."""
    return "\t".join(row[name] for name in WRITTEN)


@dataclass
class BenchEnvironment:
    database_url: str

    def create_app(self, name: str) -> tuple[str, str]:
        """An app with a key and the typical rule for user_login; returns (app_id, key)."""
        from sluice.manage import admin

        conn = psycopg2.connect(self.database_url)
        try:
            with conn:
                app_id = admin.create_app(conn, name)
                key = admin.create_api_key(conn, app_id)
                admin.put_rule(conn, app_id, "user_login", TYPICAL_RULE)
        finally:
            conn.close()
        return app_id, key


@contextlib.contextmanager
def bench_environment() -> Iterator[BenchEnvironment]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.update(
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_SERVICE_NAME="sluice-bench",
        POWERTOOLS_METRICS_NAMESPACE="Sluice",
    )
    from sluice.schema.migrate import apply_migrations

    from toolkit.postgres import embedded_postgres, scratch_database

    with contextlib.ExitStack() as stack:
        server_url = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres("sluice-bench-")
        )
        url = stack.enter_context(scratch_database(server_url, "sluice_bench"))
        conn = psycopg2.connect(url)
        apply_migrations(conn, REPO_ROOT / "migrations")
        conn.close()
        yield BenchEnvironment(database_url=url)
