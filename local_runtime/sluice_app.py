"""What `make dev` adds for Sluice (the settings file's Setup hook): the schema and a demo app.

The demo app and its key are kept in the state folder (git-ignored), so a restart
shows the same id and key as long as the database still holds them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg2
from sluice.intake.catalog_data import fetch_app, fetch_key_owner
from sluice.intake.keys import hash_api_key
from sluice.manage import admin
from sluice.schema.migrate import apply_migrations

from local_runtime.runtime import SetupContext

DEMO_FILE = "demo-app.json"
# The app the sample events in events/ name (`make invoke FN=IngestFunction
# EVENT=events/ingest-event.json`); its key is in those files, so it exists locally only.
SAMPLE_APP = "app_sample"
# Events named user_login need an integer userId: `"userId": "42"` shows a 422.
DEMO_RULES = {
    "user_login": {
        "type": "object",
        "required": ["userId"],
        "properties": {"userId": {"type": "integer"}},
    }
}


def _demo_app(conn, path: Path) -> tuple[str, str]:
    if path.exists():
        saved = json.loads(path.read_text())
        key_owner = fetch_key_owner(conn, hash_api_key(saved["key"]))
        if fetch_app(conn, saved["app_id"]) is not None and key_owner == saved["app_id"]:
            return saved["app_id"], saved["key"]
    with conn:
        app_id = admin.create_app(conn, "demo")
        key = admin.create_api_key(conn, app_id)
        for event_name, schema in DEMO_RULES.items():
            admin.put_rule(conn, app_id, event_name, schema)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"app_id": app_id, "key": key}, file)
    return app_id, key


def sample_app(conn, events_dir: Path) -> str:
    """The app, key and user_login rule the sample events carry, made once; the key.

    Committing is the caller's.
    """
    key = json.loads((events_dir / "ingest-event.json").read_text())["headers"]["x-api-key"]
    with conn.cursor() as cur:
        # The samples were received in 2025: the longest retention keeps them from the
        # maintain function's runs (and the rollups equal to the rows).
        cur.execute(
            "INSERT INTO apps (app_id, name, retention_days) VALUES (%s, 'sample app', 3650)"
            " ON CONFLICT (app_id) DO NOTHING",
            (SAMPLE_APP,),
        )
        if cur.rowcount == 1:
            cur.execute(
                "INSERT INTO api_keys (app_id, prefix, key_hash) VALUES (%s, %s, %s)",
                (SAMPLE_APP, key.rsplit("_", 1)[0], hash_api_key(key)),
            )
            admin.put_rule(conn, SAMPLE_APP, "user_login", DEMO_RULES["user_login"])
    return key


def _verify_sender(context: SetupContext) -> str | None:
    """SES sends only from a verified identity; moto's starts with none."""
    email = context.topology.functions.get("EmailFunction")
    sender = email.environment.get("EMAIL_SENDER_ADDRESS") if email else None
    if not sender:
        return None
    import boto3

    boto3.client(
        "sesv2",
        endpoint_url=context.aws_endpoint_url,
        region_name=email.arn.split(":")[3],  # the runtime's region
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto's placeholder
    ).create_email_identity(EmailIdentity=sender)
    return sender


def _archive_bucket(context: SetupContext) -> None:
    """The maintain function archives to moto's S3 locally: its bucket must exist there."""
    maintain = context.topology.functions.get("MaintainFunction")
    bucket = maintain.environment.get("ARCHIVE_BUCKET") if maintain else None
    if not bucket:
        return
    context.tool_environment["ARCHIVE_BUCKET"] = bucket  # make archive-read, make maintain
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=context.aws_endpoint_url,
        region_name=maintain.arn.split(":")[3],
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto's placeholder
    )
    s3.create_bucket(Bucket=bucket)


def setup(context: SetupContext) -> list[str]:
    if not context.database_url:
        raise RuntimeError("Sluice needs a database: the settings file's Postgres section")
    conn = psycopg2.connect(context.database_url)
    try:
        applied = apply_migrations(conn, context.template_dir / "migrations")
        app_id, key = _demo_app(conn, context.state_dir / DEMO_FILE)
        with conn:
            sample_app(conn, context.template_dir / "events")
    finally:
        conn.close()
    sender = _verify_sender(context)
    _archive_bucket(context)
    dead_letters = context.queue_urls.get("EventsDeadLetterQueue")
    if dead_letters:
        context.tool_environment["EVENTS_DLQ_URL"] = dead_letters  # make redrive
    body = '{"eventName": "user_login", "userId": 42}'
    return [
        f"  schema    {'applied ' + ', '.join(applied) if applied else 'up to date'}",
        f"  demo app  {app_id}",
        f"  demo key  {key}",
        "Send an event (202; a text userId gets 422, stored as invalid):",
        f"  curl -i {context.api_url}/api/logs/{app_id} -H 'X-Api-Key: {key}'"
        f" -H 'Content-Type: application/json' -d '{body}'",
        "Look at what is stored, or manage apps (docs/managing-apps.md):",
        f"  DATABASE_URL='{context.database_url}' .venv/bin/python -m tools.admin --help",
        f"Events the store cannot take wait in the DLQ {dead_letters}"
        " (`make redrive` moves them back).",
        f"Accounts: mail goes from {sender} to moto's SES; codes print below as [local mail]."
        " Read the mail with `make mail` (docs/managing-apps.md, Accounts).",
    ]
