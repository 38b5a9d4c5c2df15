"""The local stack keeps its promises: helpers that die come back, and health says so."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.runtime import Runtime
from tests.e2e.conftest import REPO_ROOT, running_stack
from tests.e2e.test_make_dev import Dev
from tests.local_runtime.conftest import http
from tests.support import scratch_database, wait_for


@pytest.fixture(scope="module")
def stack(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Sluice's template as make dev runs it, on a database of its own."""
    with scratch_database(postgres_server_url, "local_stack") as database_url:
        with running_stack(database_url, tmp_path_factory.mktemp("local_stack")) as runtime:
            yield runtime


@pytest.fixture
def own_stack(postgres_server_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A stack for one test that kills its helpers: nothing an earlier test did to the
    module's stack can change what this one sees."""
    with scratch_database(postgres_server_url, "local_stack_own") as database_url:
        with running_stack(database_url, tmp_path) as runtime:
            yield runtime


def _demo(runtime: Runtime) -> tuple[str, str]:
    saved = json.loads((runtime.state_dir / "demo-app.json").read_text())
    return saved["app_id"], saved["key"]


def _send(runtime: Runtime, app_id: str, key: str) -> int:
    status, _, _ = http(
        "POST",
        f"{runtime.api_url}/api/logs/{app_id}",
        json.dumps({"eventName": "user_login", "userId": 1}).encode(),
        {"X-Api-Key": key, "Content-Type": "application/json"},
    )
    return status


def _processes() -> Iterator[tuple[int, int, list[bytes]]]:
    """(pid, parent pid, command line) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        yield int(entry.name), int(stat.rsplit(")", 1)[1].split()[1]), command


def _ended(pid: int) -> bool:
    """Gone, or a zombie its parent has not collected yet."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _child(name: str, parent: int | None = None) -> int:
    """The pid of the child of `parent` (this process) whose command line names `name`."""
    for pid, ppid, command in _processes():
        if ppid == (parent or os.getpid()) and any(name in part.decode() for part in command):
            return pid
    raise AssertionError(f"no child process runs {name}")


def _health(runtime: Runtime) -> tuple[int, dict]:
    status, _, body = http("GET", runtime.api_url + "/_local/health")
    return status, json.loads(body)


def _degraded_health(runtime: Runtime) -> tuple[int, dict] | None:
    status, body = _health(runtime)
    return (status, body) if status != 200 else None


# ------------------------------------- the README's and docs/'s commands, as written
# The operator commands a developer runs against `make dev`; AWS-only lines (ENV=...,
# LOCAL_STACK=off) and the long-running ones (dev, test, loadtest, build) are not here.
LOCAL_TARGETS = {
    "invoke",
    "archive-read",
    "maintain",
    "redrive",
    "mail",
    "migrate",
    "aggregate",
    "rebuild-aggregates",
}
# Named in the docs' prose rather than in a block.
PROSE_COMMANDS = ["make migrate", "make aggregate"]
# Where a reader finds commands: the README, the pages it sends them to, CONTRIBUTING.
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
DOCUMENTS.append(REPO_ROOT / "CONTRIBUTING.md")


def readme_commands() -> list[str]:
    """Every `make <local target>` line of the documents' shell blocks, comment dropped."""
    commands, in_shell = [], False
    for line in "\n".join(d.read_text() for d in DOCUMENTS).splitlines():
        if line.startswith("```"):
            in_shell = not in_shell and line.strip("`").strip() in {"bash", "sh"}
            continue
        command = line.split("  #")[0].strip()
        match = re.search(r"(?:^|\| )make ([\w-]+)", command)
        if in_shell and match and match.group(1) in LOCAL_TARGETS:
            if "ENV=" not in command and "LOCAL_STACK=off" not in command:
                commands.append(command)
    return commands + PROSE_COMMANDS


def test_the_readme_lists_the_local_commands():
    targets = {re.search(r"make ([\w-]+)", c).group(1) for c in readme_commands()}

    assert targets == LOCAL_TARGETS


def _shell_environment(**extra: str) -> dict[str, str]:
    """A developer's shell: none of AWS's or the database's variables, and not inside a
    make of its own (under `make test`, make's variables would make the README's `make`
    print "Entering directory" lines around a command's own output)."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_")
        and name not in {"DATABASE_URL", "ARCHIVE_BUCKET", "EVENTS_DLQ_URL", "ENV"}
        and name not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}
    }
    # No instance metadata to wait for, no ~/.aws to find: a fresh machine.
    return (
        kept
        | {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        }
        | extra
    )


def _run(command: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S602 - the README's own command line
        command,
        shell=True,
        cwd=REPO_ROOT,
        env=_shell_environment(**extra),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _depth(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _as_run_here(command: str) -> str:
    """The README's placeholders filled: the sample app, no optional parts."""
    command = re.sub(r"\[([^]]*)\]", r"\1", command).replace("app_...", "app_sample")
    assert "..." not in command and "<" not in command, f"a placeholder is left: {command}"
    return command


@pytest.mark.parametrize("command", readme_commands())
def test_each_readme_command_works_against_a_running_make_dev(stack, command):
    # Given make dev running (its state folder in LOCAL_STATE_DIR) and a shell with no
    # AWS or database variables
    target = re.search(r"make ([\w-]+)", command).group(1)
    if target == "redrive":
        # (a poison message dead-lettered, in the DLQ whose URL the banner prints)
        dlq = stack.tool_environment["EVENTS_DLQ_URL"]
        assert any(dlq in line for line in stack.setup_lines)
        sqs = stack.sqs_client()
        sqs.send_message(QueueUrl=stack.queue_urls["EventsQueue"], MessageBody="not json")
        wait_for(lambda: _depth(sqs, dlq) == 1, timeout=60)

    # When the README's command runs
    done = _run(_as_run_here(command), LOCAL_STATE_DIR=str(stack.state_dir))

    # Then it works, without a traceback
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    if target == "archive-read":
        # nothing is archived that day: said in one line, with its own exit code
        assert done.returncode == 2, output  # make's code for a failed recipe
        assert "python -m tools.archive: nothing archived for app_sample on 2026-03-01" in output
        return
    assert done.returncode == 0, output
    if target == "invoke":
        assert "using make dev's stack" in done.stderr
        if "ingest-event" in command:
            assert json.loads(done.stdout.splitlines()[-1])["statusCode"] == 202, output
    elif target == "redrive":
        assert "moved 1 message(s)" in done.stdout, output
    elif target == "mail":
        assert "no mail yet" in done.stdout or "--- to" in done.stdout, output
    elif target == "migrate":
        assert "schema is up to date" in done.stdout, output
    if target != "invoke":
        assert "using make dev's stack" in done.stderr, output


def test_a_bare_body_for_an_api_function_is_refused_with_a_sentence(stack):
    done = _run(
        """echo '{"eventName": "x"}' | make invoke FN=IngestFunction EVENT=-""",
        LOCAL_STATE_DIR=str(stack.state_dir),
    )

    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "KeyError" not in done.stdout
    assert "IngestFunction is invoked by API Gateway" in done.stderr
    assert re.search(r"events/ingest-\w+\.json is one", done.stderr), done.stderr


# ------------------------------------------- a sentence where a traceback was
# Nothing listens on the discard port: the connection is refused at once.
UNREACHABLE = "postgresql://sluice@127.0.0.1:9/sluice"
REBUILD = [
    "-m",
    "tools.aggregate",
    "rebuild",
    "--from",
    "2026-03-01",
    "--to",
    "2026-03-02",
]


def _cli(args: list[str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - this interpreter, our own modules
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=_shell_environment(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_sentence(done: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr  # one line
    assert text in done.stderr, done.stderr
    assert done.returncode == code, done.stderr


@pytest.mark.parametrize(
    ("args", "variables", "code", "text"),
    [
        (
            ["-m", "tools.migrate"],
            {"DATABASE_URL": UNREACHABLE},
            8,
            "migrate: cannot connect",
        ),
        (["-m", "tools.migrate"], {}, 7, "make migrate: DATABASE_URL is not set"),
        (REBUILD, {"DATABASE_URL": UNREACHABLE}, 8, "tools.aggregate: cannot connect to"),
        (
            ["-m", "tools.aggregate", "run"],
            {"DATABASE_URL": UNREACHABLE},
            8,
            "cannot connect",
        ),
        (
            ["-m", "tools.maintain", "run"],
            {"DATABASE_URL": UNREACHABLE, "ARCHIVE_BUCKET": "archive"},
            8,
            "tools.maintain: cannot connect to DATABASE_URL",
        ),
        (
            ["-m", "tools.archive", "read", "app_x", "2026-03-01"],
            {"ARCHIVE_BUCKET": "archive"},
            13,
            "tools.archive: Unable to locate credentials",
        ),
        (["-m", "tools.maintain", "run"], {}, 13, "ARCHIVE_BUCKET is not set"),
        (["-m", "tools.mail"], {}, 13, "make mail: make dev is not running"),
        (
            ["-m", "tools.mail"],
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
            14,
            "make mail: no moto server answers at http://127.0.0.1:9",
        ),
        (["-m", "tools.redrive"], {}, 13, "make redrive: no queue to redrive"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_an_operator_mistake_is_one_sentence_and_an_exit_code(args, variables, code, text):
    _one_sentence(_cli(args, **variables), code, text)


def test_make_mail_with_make_dev_stopped_says_so(tmp_path):
    done = _run("make mail", LOCAL_STATE_DIR=str(tmp_path))

    assert "Traceback" not in done.stderr
    assert "make mail: make dev is not running: start it first" in done.stderr
    assert done.returncode != 0


def test_rebuilding_an_unknown_app_is_refused_not_reported_done(database_url):
    done = _cli([*REBUILD, "--app", "app_nope"], DATABASE_URL=database_url)

    _one_sentence(done, 1, "python -m tools.aggregate: no app with the id 'app_nope'")
    assert "rebuilt" not in done.stdout


def test_redriving_an_unknown_queue_names_it(stack):
    nope = stack.sqs_endpoint_url + "/123456789012/no-such-queue"
    done = _cli(["-m", "tools.redrive", "--dlq-url", nope], **stack.tool_environment_values())

    _one_sentence(done, 15, f"make redrive: the queue {nope}: ")


def test_health_names_each_helper(stack):
    status, body = _health(stack)

    assert (status, body) == (200, {"status": "ok", "helpers": {"moto": "ok", "local_queue": "ok"}})


def test_a_killed_local_queue_is_started_again_and_health_tells_the_truth_meanwhile(
    own_stack: Runtime, caplog: pytest.LogCaptureFixture
):
    stack = own_stack
    # Given a stack that takes events
    app_id, key = _demo(stack)
    assert _send(stack, app_id, key) == 202
    url = stack.sqs_endpoint_url

    # (its restart held back until health has been asked, so the answer while it is down
    # does not race a quick restart)
    helper = next(h for h in stack.helpers if h.name == "local_queue")
    launch, asked = helper.launch, threading.Event()
    helper.launch = lambda: (asked.wait(60), launch())[1]

    # When local_queue is killed outright
    try:
        with caplog.at_level(logging.WARNING, logger="local_runtime"):
            # (this stack's own helper: a search of this process's children by name can
            # find another stack's, or a reaped-late one, when the whole suite runs)
            pid = helper.process.process.pid
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: _ended(pid))
            # Then health says so while it is down (polled: a health check that runs
            # while the supervisor collects the process cannot tell yet, as Popen.poll
            # answers None to a second thread)
            status, body = wait_for(lambda: _degraded_health(stack), timeout=10)
            asked.set()
            assert status == 503, body
            assert body["status"] == "degraded"
            assert body["helpers"]["local_queue"] in {"restarting", "not answering"}

            # And it comes back at the same address: sends succeed and health is ok again
            wait_for(lambda: _send(stack, app_id, key) == 202, timeout=60)
            assert wait_for(lambda: _health(stack)[0] == 200, timeout=30)
    finally:
        asked.set()
        helper.launch = launch
    assert stack.sqs_endpoint_url == url
    log = caplog.text
    assert f"local_queue exited (status -9): starting it again at {url}" in log
    assert f"local_queue restarted at {url}" in log


def test_health_probes_the_helpers_instead_of_trusting_their_processes(stack):
    # A helper whose process lives but no longer answers is reported, not assumed
    helper = next(h for h in stack.helpers if h.name == "moto")
    probe = helper.probe

    def refused() -> None:
        raise ConnectionRefusedError("nothing listens")

    helper.probe = refused
    try:
        status, body = _health(stack)
    finally:
        helper.probe = probe

    assert status == 503
    assert body["helpers"]["moto"] == "not answering"


def test_a_killed_embedded_postgres_helper_comes_back_and_still_stops_with_make_dev(dev_state):
    # Given make dev with its embedded PostgreSQL
    dev = Dev(dev_state)
    dev.wait_for_line(r"^Ctrl-C stops")
    api_url = dev.wait_for_line(r"API\s+(http://\S+)").group(1)

    # When the process that runs PostgreSQL for it is killed outright
    os.kill(_child("_postgres.py", dev.process.pid), signal.SIGKILL)

    # Then it is started again (the log says so) and health comes back to ok
    dev.wait_for_line(r"postgres exited \(status -9\): starting it again")
    dev.wait_for_line(r"postgres restarted at ")
    wait_for(lambda: http("GET", api_url + "/_local/health")[0] == 200, timeout=60)
    # And Ctrl-C still stops PostgreSQL: the killed helper's handle does not keep it up
    dev.interrupt()
    data = str(dev_state / "pgdata")
    wait_for(
        lambda: (
            not any(
                any(part.decode() == data for part in command) for _, _, command in _processes()
            )
        ),
        timeout=60,
    )
