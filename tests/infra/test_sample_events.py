"""The events/ files, as `sam local invoke -e` would pass them, drive the real handlers.

Each handler starts cold, configured only through the environment variables the
template gives it (DATABASE_URL standing in for the DB_* ones), against the test
database and moto's SQS.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

import functions.accounts.app as accounts_app
import functions.aggregate.app as aggregate_app
import functions.email.app as email_app
import functions.ingest.app as ingest_app
import functions.maintain.app as maintain_app
import functions.migrate.app as migrate_app
import functions.store.app as store_app
from tests.infra.stack import REPO_ROOT, run_tool, tool
from tests.support import EVENTS, SAMPLE_APP, ResponseCatcher, add_sample_app, sample


class LambdaContext:
    function_name = "sluice-dev-Function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-dev-Function"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def __init__(self, seconds_left: float = 300) -> None:
        self.seconds_left = seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


@pytest.fixture
def cold(monkeypatch):
    """Each handler builds its clients and connections again, as in a new container."""
    caches = (
        ingest_app.ingestor,
        store_app.database,
        accounts_app.accounts,
        email_app.mailer,
        aggregate_app.settings,
        aggregate_app.database,
        maintain_app.settings,
        maintain_app.database,
        maintain_app.bucket,
    )
    for cached in caches:
        cached.cache_clear()
    yield monkeypatch
    for cached in caches:
        cached.cache_clear()


@pytest.fixture
def sample_app(db) -> str:
    """The app and key the sample ingest events carry."""
    return add_sample_app(db)


@pytest.fixture
def ingest_env(cold, database_url, queues):
    cold.setenv("EVENTS_QUEUE_URL", queues["events"])
    cold.setenv("DATABASE_URL", database_url)
    cold.setenv("MAX_EVENT_BYTES", "32768")
    cold.setenv("RULES_CACHE_TTL_SECONDS", "60")


@pytest.fixture
def store_env(cold, database_url):
    cold.setenv("DATABASE_URL", database_url)


@pytest.fixture
def aggregate_env(cold, database_url):
    cold.setenv("DATABASE_URL", database_url)
    cold.setenv("AGGREGATE_CHUNK_SIZE", "20000")


@pytest.fixture
def catcher() -> Iterator[ResponseCatcher]:
    catcher = ResponseCatcher()
    yield catcher
    catcher.close()


@pytest.fixture
def empty_database_url(postgres_server_url) -> Iterator[str]:
    """A database with no schema at all: what the migration function meets on a new stack."""
    name = f"sluice_fresh_{uuid.uuid4().hex[:8]}"
    admin_conn = psycopg2.connect(postgres_server_url)
    admin_conn.autocommit = True
    with admin_conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(postgres_server_url)._replace(path="/" + name))
    with admin_conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_conn.close()


def queued_events(sqs, queue_url: str) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [event for m in messages for event in json.loads(m["Body"]).get("events", [])]


def tables(url: str) -> set[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        names = {name for (name,) in cur.fetchall()}
    conn.close()
    return names


# --- ingest -------------------------------------------------------------------------


def test_ingest_event_is_accepted_and_queued(ingest_env, sample_app, sqs, queues):
    response = ingest_app.handler(sample("ingest-event.json"), LambdaContext())

    assert response["statusCode"] == 202
    assert json.loads(response["body"])["status"] == "valid"
    (event,) = queued_events(sqs, queues["events"])
    assert (event["app_id"], event["event_name"], event["status"]) == (
        SAMPLE_APP,
        "user_login",
        "valid",
    )
    assert event["message_id"] == "sample-login-1"


def test_ingest_batch_queues_valid_and_invalid_and_rejects_the_malformed(
    ingest_env, sample_app, sqs, queues
):
    response = ingest_app.handler(sample("ingest-batch.json"), LambdaContext())
    results = json.loads(response["body"])["results"]

    assert [r["status"] for r in results] == ["valid", "invalid", "valid", "rejected"]
    queued = queued_events(sqs, queues["events"])
    assert sorted(e["message_id"] for e in queued) == [
        "sample-batch-1",
        "sample-batch-2",
        "sample-batch-3",
    ]


def test_ingest_without_the_key_is_refused(ingest_env, sample_app, sqs, queues):
    event = sample("ingest-event.json")
    del event["headers"]["x-api-key"]

    assert ingest_app.handler(event, LambdaContext())["statusCode"] == 401
    assert queued_events(sqs, queues["events"]) == []


def test_store_sample_message_has_the_shape_ingest_sends(ingest_env, sample_app, sqs, queues):
    """If the message format changes, events/store-batch.json must change with it."""
    ingest_app.handler(sample("ingest-event.json"), LambdaContext())
    (message,) = sqs.receive_message(QueueUrl=queues["events"])["Messages"]
    sent = json.loads(message["Body"])
    stored_sample = json.loads(sample("store-batch.json")["Records"][0]["body"])

    assert sent.keys() == stored_sample.keys()
    assert sent["version"] == stored_sample["version"]
    for event in stored_sample["events"]:
        assert event.keys() == sent["events"][0].keys()


# --- accounts and email -------------------------------------------------------------


@pytest.fixture
def email_queue(sqs) -> str:
    return sqs.create_queue(QueueName="sluice-dev-EmailQueue")["QueueUrl"]


@pytest.fixture
def accounts_env(cold, database_url, email_queue, db):
    cold.setenv("EMAIL_QUEUE_URL", email_queue)
    cold.setenv("DATABASE_URL", database_url)
    cold.setenv("PASSWORD_SCRYPT_N", "1024")  # the template's 2^17 is measured by make bench


@pytest.fixture
def email_env(cold, database_url, db, aws):
    import boto3

    boto3.client("sesv2").create_email_identity(EmailIdentity="no-reply@sluice.test")
    cold.setenv("DATABASE_URL", database_url)
    cold.setenv("EMAIL_SENDER_ADDRESS", "no-reply@sluice.test")
    cold.setenv("PRODUCT_NAME", "Sluice")


def test_accounts_register_sample_queues_one_email_request(accounts_env, sqs, email_queue):
    response = accounts_app.handler(sample("accounts-register.json"), LambdaContext())

    assert response["statusCode"] == 202, response
    (message,) = sqs.receive_message(QueueUrl=email_queue)["Messages"]
    assert json.loads(message["Body"])["kind"] == "register"


def test_email_sample_message_has_the_shape_accounts_sends(accounts_env, sqs, email_queue):
    """If the request's format changes, events/email-batch.json must change with it."""
    accounts_app.handler(sample("accounts-register.json"), LambdaContext())
    (message,) = sqs.receive_message(QueueUrl=email_queue)["Messages"]
    sent = json.loads(message["Body"])
    sample_body = json.loads(sample("email-batch.json")["Records"][0]["body"])

    assert sent.keys() == sample_body.keys()
    assert sent["v"] == sample_body["v"]


def test_email_batch_for_a_challenge_that_is_not_there_sends_nothing_and_fails_nothing(
    email_env,
):
    from moto.ses.models import ses_backends

    response = email_app.handler(sample("email-batch.json"), LambdaContext())

    assert response == {"batchItemFailures": []}
    assert ses_backends["123456789012"]["us-east-1"].sent_messages == []


# --- store --------------------------------------------------------------------------


def test_store_batch_stores_the_good_message_and_fails_only_the_poison_one(
    store_env, sample_app, db
):
    event = sample("store-batch.json")
    good, poison = (record["messageId"] for record in event["Records"])

    response = store_app.handler(event, LambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": poison}]}
    with db.cursor() as cur:
        cur.execute("SELECT event_name, status, message_id FROM events ORDER BY event_id")
        assert cur.fetchall() == [
            ("user_login", "valid", "sample-login-1"),
            ("user_login", "invalid", None),
        ]
    assert good != poison


def test_store_batch_delivered_twice_stores_once(store_env, sample_app, db):
    event = sample("store-batch.json")
    store_app.handler(event, LambdaContext())
    store_app.handler(event, LambdaContext())

    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM events")
        assert cur.fetchone() == (2,)


# --- migrate (the deploy-time custom resource) -------------------------------------


def invoke_migrate(event: dict, catcher: ResponseCatcher, seconds_left: float = 300) -> dict:
    event = {**event, "ResponseURL": catcher.url}
    migrate_app.handler(event, LambdaContext(seconds_left))
    assert catcher.received.wait(30), "no response reached CloudFormation"
    catcher.received.clear()
    return catcher.bodies[-1]


def test_migrate_create_builds_the_schema_and_answers_cloudformation(
    cold, empty_database_url, catcher
):
    cold.setenv("DATABASE_URL", empty_database_url)
    event = sample("migrate-create.json")
    newest = sorted(p.name for p in (REPO_ROOT / "migrations").glob("*.sql"))[-1]

    answer = invoke_migrate(event, catcher)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert {k: answer[k] for k in ("StackId", "RequestId", "LogicalResourceId")} == {
        k: event[k] for k in ("StackId", "RequestId", "LogicalResourceId")
    }
    assert answer["PhysicalResourceId"] == migrate_app.PHYSICAL_ID
    assert answer["Data"]["Latest"] == newest
    assert newest in answer["Data"]["Applied"]
    assert {"apps", "api_keys", "rules", "events", "schema_migrations"} <= tables(
        empty_database_url
    )
    # The pre-signed URL is signed for an empty content type.
    assert catcher.headers[-1].get("Content-Type", "") == ""


def test_migrate_update_applies_only_what_is_new(cold, empty_database_url, catcher):
    cold.setenv("DATABASE_URL", empty_database_url)
    invoke_migrate(sample("migrate-create.json"), catcher)
    update = {
        **sample("migrate-create.json"),
        "RequestType": "Update",
        "PhysicalResourceId": migrate_app.PHYSICAL_ID,
        "OldResourceProperties": {},
    }

    answer = invoke_migrate(update, catcher)

    assert answer["Status"] == "SUCCESS"
    assert answer["Data"]["Applied"] == "none"
    assert answer["PhysicalResourceId"] == migrate_app.PHYSICAL_ID


MIGRATE_ARN = sample("migrate-create.json")["ServiceToken"]


def update_event(*, from_version: int, to_version: int) -> dict:
    """The Update CloudFormation sends when Migrations' CodeVersion changes.

    A deploy moves forward (to > from). Its rollback sends the same request the other
    way round: ResourceProperties are the old template's, OldResourceProperties the
    failed deploy's.
    """
    create = sample("migrate-create.json")
    return {
        **create,
        "RequestType": "Update",
        "PhysicalResourceId": migrate_app.PHYSICAL_ID,
        "ResourceProperties": {
            **create["ResourceProperties"],
            "CodeVersion": f"{MIGRATE_ARN}:{to_version}",
        },
        "OldResourceProperties": {
            **create["ResourceProperties"],
            "CodeVersion": f"{MIGRATE_ARN}:{from_version}",
        },
    }


@pytest.fixture
def migrations_with_a_broken_one(tmp_path) -> Path:
    """The repository's migrations plus a newer one PostgreSQL refuses."""
    for path in (REPO_ROOT / "migrations").glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "9999_broken.sql").write_text("ALTER TABLE no_such_table ADD COLUMN x int;")
    return tmp_path


def applied_migrations(url: str) -> set[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM schema_migrations")
        names = {name for (name,) in cur.fetchall()}
    conn.close()
    return names


def test_a_failed_migration_fails_the_deploy_and_its_rollback_succeeds(
    cold, empty_database_url, catcher, migrations_with_a_broken_one
):
    # Given a stack at version 1 whose next deploy (version 2) carries a broken migration
    cold.setenv("DATABASE_URL", empty_database_url)
    invoke_migrate(sample("migrate-create.json"), catcher)
    before = applied_migrations(empty_database_url)
    cold.setenv("MIGRATIONS_DIR", str(migrations_with_a_broken_one))

    # When the deploy runs it, and CloudFormation rolls back with the request it sends then
    deploy = invoke_migrate(update_event(from_version=1, to_version=2), catcher)
    rollback = invoke_migrate(update_event(from_version=2, to_version=1), catcher)

    # Then the deploy fails, the rollback succeeds without running the migration again,
    # and the schema is what it was
    assert deploy["Status"] == "FAILED"
    assert "no_such_table" in deploy["Reason"]
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert rollback["PhysicalResourceId"] == migrate_app.PHYSICAL_ID
    assert set(rollback["Data"]) == {"Applied", "Latest"}  # SchemaVersion reads Latest
    assert applied_migrations(empty_database_url) == before


def test_a_rollback_never_touches_the_database(cold, catcher):
    cold.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # unreachable on purpose

    answer = invoke_migrate(update_event(from_version=7, to_version=6), catcher)

    assert answer["Status"] == "SUCCESS"


def test_an_update_that_keeps_the_code_version_leaves_the_database_alone(cold, catcher):
    # A deploy (or its rollback) that changes Migrations but not the code: the migrations
    # this version carries were applied when it was deployed.
    cold.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # unreachable on purpose

    answer = invoke_migrate(update_event(from_version=7, to_version=7), catcher)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    newest = sorted(p.name for p in (REPO_ROOT / "migrations").glob("*.sql"))[-1]
    assert answer["Data"] == {"Applied": "none (code unchanged)", "Latest": newest}


def scram_verifies(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier was made from this password (RFC 5802)."""
    import base64
    import hashlib
    import hmac

    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and hmac.compare_digest(
        hashlib.sha256(client_key).digest(), base64.b64decode(stored_key)
    )


def stored_verifier(url: str, role: str) -> str:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        (verifier,) = cur.fetchone()
    conn.close()
    return verifier


@pytest.mark.parametrize(
    ("from_version", "to_version"), [(7, 7), (6, 7)], ids=["same-code", "new-code"]
)
def test_a_replaced_role_secret_gets_its_password_and_a_rollback_puts_the_old_one_back(
    cold, empty_database_url, catcher, migrations_with_a_broken_one, aws, from_version, to_version
):
    import boto3

    # Given a stack whose store secret is replaced by a deploy: when the code stays, the
    # published version's environment still names the old secret, the request the new.
    secrets = boto3.client("secretsmanager")
    old, new = (
        secrets.create_secret(
            Name=f"store-{n}", SecretString=json.dumps({"username": "sluice_store", "password": p})
        )["ARN"]
        for n, p in (("old", "old-password-1234"), ("new", "new-password-5678"))
    )
    cold.setenv("DATABASE_URL", empty_database_url)
    cold.setenv("DB_ROLE_SECRETS", old)
    invoke_migrate(sample("migrate-create.json"), catcher)
    assert scram_verifies(stored_verifier(empty_database_url, "sluice_store"), "old-password-1234")
    applied = applied_migrations(empty_database_url)
    if from_version == to_version:
        cold.setenv("MIGRATIONS_DIR", str(migrations_with_a_broken_one))  # fails if run
    forward = update_event(from_version=from_version, to_version=to_version)
    forward["ResourceProperties"]["RoleSecrets"] = [new]
    forward["OldResourceProperties"]["RoleSecrets"] = [old]

    # When that deploy runs, and then its rollback (the same request the other way round)
    deploy = invoke_migrate(forward, catcher)
    after_deploy = stored_verifier(empty_database_url, "sluice_store")
    rollback = invoke_migrate(
        {
            **forward,
            "ResourceProperties": forward["OldResourceProperties"],
            "OldResourceProperties": forward["ResourceProperties"],
        },
        catcher,
    )

    # Then each sets the password of the secret the stack moves to, and no migration runs
    assert deploy["Status"] == "SUCCESS", deploy["Reason"]
    assert scram_verifies(after_deploy, "new-password-5678")
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert scram_verifies(stored_verifier(empty_database_url, "sluice_store"), "old-password-1234")
    assert applied_migrations(empty_database_url) == applied


@pytest.mark.parametrize(
    "event",
    [
        update_event(from_version=6, to_version=7),
        # The function was replaced: versions of two functions say nothing about direction.
        {
            **update_event(from_version=7, to_version=6),
            "OldResourceProperties": {"CodeVersion": "arn:aws:lambda:us-east-1:1:function:other:7"},
        },
        # The first deploy of this handler onto a stack created before CodeVersion existed.
        {**update_event(from_version=7, to_version=6), "OldResourceProperties": {}},
    ],
    ids=["forward", "replaced-function", "no-old-version"],
)
def test_every_other_update_applies_the_migrations(cold, empty_database_url, catcher, event):
    cold.setenv("DATABASE_URL", empty_database_url)

    answer = invoke_migrate(event, catcher)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert "schema_migrations" in tables(empty_database_url)


def test_migrate_delete_answers_without_touching_the_database(cold, empty_database_url, catcher):
    cold.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")  # unreachable on purpose
    delete = {
        **sample("migrate-create.json"),
        "RequestType": "Delete",
        "PhysicalResourceId": migrate_app.PHYSICAL_ID,
    }

    assert invoke_migrate(delete, catcher)["Status"] == "SUCCESS"


def test_migrate_failure_is_reported_not_left_hanging(cold, catcher):
    cold.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")

    answer = invoke_migrate(sample("migrate-create.json"), catcher)

    assert answer["Status"] == "FAILED"
    assert "DatabaseUnavailable" in answer["Reason"]


def test_migrate_answers_failed_before_lambda_would_time_out(cold, catcher):
    started = threading.Event()
    release = threading.Event()

    def slow_migration(*_args: object, **_kwargs: object) -> dict:
        started.set()
        release.wait(60)  # held past the timer's answer, however late a busy machine runs it
        return {"Applied": "none", "Latest": "none"}

    cold.setattr(migrate_app, "migrate", slow_migration)
    cold.setattr(migrate_app, "DEADLINE_MARGIN_SECONDS", 0)
    event = {**sample("migrate-create.json"), "ResponseURL": catcher.url}
    worker = threading.Thread(target=migrate_app.handler, args=(event, LambdaContext(1.0)))
    worker.start()

    assert catcher.received.wait(30)
    release.set()
    worker.join(5)
    assert [body["Status"] for body in catcher.bodies] == ["FAILED"]  # answered once
    assert "timed out" in catcher.bodies[0]["Reason"]


# --- the files keep the shape AWS sends ---------------------------------------------


def generated(*args: str) -> dict:
    result = run_tool(tool("sam"), "local", "generate-event", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["ingest-event.json", "ingest-batch.json", "accounts-register.json", "manage-list-apps.json"],
)
def test_http_api_samples_match_sam_generate_event(name):
    reference = generated("apigateway", "http-api-proxy")
    event = sample(name)

    # API Gateway leaves out cookies, query strings, path parameters, stage variables,
    # the body and authorizer context when a request has none; everything else is always there.
    assert set(event) <= set(reference)
    assert set(reference) - set(event) <= {
        "body",
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
    }
    assert set(reference["requestContext"]) - set(event["requestContext"]) <= {
        "authentication",
        "authorizer",
    }
    assert set(event["requestContext"]["http"]) == set(reference["requestContext"]["http"])
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] != "$default"


@pytest.mark.slow
def test_sqs_sample_matches_sam_generate_event():
    (reference,) = generated("sqs", "receive-message")["Records"]
    for record in sample("store-batch.json")["Records"] + sample("email-batch.json")["Records"]:
        assert set(record) == set(reference)
        assert set(record["attributes"]) == set(reference["attributes"])


@pytest.mark.slow
def test_cloudformation_sample_matches_sam_generate_event():
    reference = generated("cloudformation", "create-request")
    event = sample("migrate-create.json")
    assert set(reference) <= set(event)
    assert event["ResourceType"] == "Custom::Migrations"


# --- aggregate ----------------------------------------------------------------------


def test_aggregate_schedule_event_counts_the_stored_sample_batch(
    store_env, aggregate_env, cold, sample_app, db
):
    with db.cursor() as cur:  # counts other tests left for the sample app
        for table in ("event_counts_hourly", "event_counts_daily", "daily_users"):
            cur.execute(f"DELETE FROM {table} WHERE app_id = %s", (SAMPLE_APP,))  # noqa: S608
    store_app.handler(sample("store-batch.json"), LambdaContext())
    cold.setenv("DB_USER", "sluice_aggregate")  # its own role, as the template sets it

    response = aggregate_app.handler(sample("aggregate-schedule.json"), LambdaContext())

    assert response["caught_up"] is True
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE app_id = %s", (SAMPLE_APP,))
        (stored,) = cur.fetchone()
        cur.execute(
            "SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE app_id = %s",
            (SAMPLE_APP,),
        )
        (counted,) = cur.fetchone()
    assert stored > 0
    assert counted == stored


# --- maintain -----------------------------------------------------------------------


def test_maintain_schedule_event_makes_partitions_and_purges_accounts_as_its_own_role(
    cold, database_url, aws, db
):
    import boto3

    boto3.client("s3").create_bucket(Bucket="sluice-archive")
    cold.setenv("DATABASE_URL", database_url)
    cold.setenv("DB_USER", "sluice_maintain")
    cold.setenv("ARCHIVE_BUCKET", "sluice-archive")
    # Given a challenge (mailed) and a session over 8 days ago, and an address last
    # mailed 2 hours ago; and the same, recent, that must stay
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts VALUES (gen_random_uuid(), 'owner@sluice.test', 'scrypt$x',"
            " now(), now()) RETURNING account_id"
        )
        (account_id,) = cur.fetchone()
        for age in ("8 days", "1 minute"):
            cur.execute(
                "INSERT INTO email_challenges (challenge_id, kind, email, created_at, expires_at)"
                " VALUES (gen_random_uuid(), 'register', 'new@sluice.test', now() - %s::interval,"
                " now() - %s::interval + interval '10 minutes') RETURNING challenge_id",
                (age, age),
            )
            cur.execute(
                "INSERT INTO email_deliveries (challenge_id, state, updated_at)"
                " VALUES (%s, 'sent', now())",
                cur.fetchone(),
            )
            cur.execute(
                "INSERT INTO sessions VALUES (gen_random_uuid(), %s, sha256(%s::bytea),"
                " now() - %s::interval - interval '12 hours', now() - %s::interval, NULL)",
                (account_id, age, age, age),
            )
        for n, age in enumerate(("2 hours", "1 minute")):
            cur.execute(
                "INSERT INTO email_send_limits VALUES (sha256(%s::bytea),"
                " ARRAY[now() - %s::interval])",
                (str(n), age),
            )

    response = maintain_app.handler(sample("maintain-schedule.json"), LambdaContext())

    assert response["finished"] is True
    with db.cursor() as cur:
        cur.execute(
            "SELECT max(day) - (now() AT TIME ZONE 'UTC')::date FROM event_partitions"
            " WHERE attached"
        )
        assert cur.fetchone() == (7,)
        # Then the old records went (the delivery with its challenge), the recent stayed
        counts = {
            key: response[key]
            for key in ("challenges_purged", "sessions_purged", "send_limits_purged")
        }
        assert counts == {"challenges_purged": 1, "sessions_purged": 1, "send_limits_purged": 1}
        for table in ("email_challenges", "email_deliveries", "sessions", "email_send_limits"):
            cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            assert cur.fetchone() == (1,), table


@pytest.mark.slow
def test_schedule_sample_matches_sam_generate_event():
    reference = generated("cloudwatch", "scheduled-event")
    event = sample("aggregate-schedule.json")
    # EventBridge's events carry "version" too; SAM's sample leaves it out.
    assert set(reference) <= set(event) <= set(reference) | {"version"}
    assert event["detail-type"] == reference["detail-type"] == "Scheduled Event"


def test_every_sample_event_is_exercised():
    exercised = {
        "aggregate-schedule.json",
        "ingest-event.json",
        "ingest-batch.json",
        "store-batch.json",
        "migrate-create.json",
        "accounts-register.json",
        "email-batch.json",
        "manage-list-apps.json",
        "maintain-schedule.json",
    }
    assert {p.name for p in Path(EVENTS).glob("*.json")} == exercised
