"""The local console in a browser; the dashboard and alarms against what a local run prints.

Debian's chromium, driven by Playwright (never `playwright install`: `make test`
installs the system browser, as root, or stops and says what is missing).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_runtime.console import emf_points
from local_runtime.sqs import sqs_client
from tests.e2e.conftest import REPO_ROOT
from tests.infra.stack import load_template, translate
from tests.local_runtime.conftest import http
from tests.observability import sluice_metric_names
from tests.support import LOGIN_RULE, make_app, wait_for

CHROMIUM = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# UPDATE_SCREENSHOT=1 make test PYTEST_ARGS=tests/e2e/test_console.py refreshes the picture
# docs/running-locally.md shows.
SCREENSHOT = REPO_ROOT / "docs" / "console.png"


class PrintedMetrics(logging.Handler):
    """Every EMF value the functions print, read from the runtime's log of their output."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.points: list[tuple[str, str, dict[str, str], float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        _function, line = record.args
        if line.startswith("{") and '"_aws"' in line:
            self.points += emf_points(json.loads(line))

    def names(self) -> set[str]:
        return {name for namespace, name, *_ in self.points if namespace == "Sluice"}

    def total(self, name: str) -> float:
        return sum(value for _, metric, _, _, value in self.points if metric == name)


@pytest.fixture(scope="module")
def printed(sluice) -> Iterator[PrintedMetrics]:
    # The runtime has only started its workers: nothing has printed a metric yet.
    handler = PrintedMetrics()
    logger = logging.getLogger("local_runtime.handler")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def app_and_key(sluice, printed):
    import psycopg2

    conn = psycopg2.connect(sluice.database_url)
    conn.autocommit = True
    try:
        yield make_app(conn, rules={"user_login": LOGIN_RULE})
    finally:
        conn.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`;"
            " `make test` does it when run as root) or set SLUICE_CHROMIUM"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: `make venv` installs requirements-dev.lock")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def send(sluice, app_id: str, key: str, body: dict) -> tuple[int, dict]:
    status, _, data = http(
        "POST",
        f"{sluice.api_url}/api/logs/{app_id}",
        json.dumps(body).encode(),
        {"X-Api-Key": key, "Content-Type": "application/json"},
    )
    return status, json.loads(data)


def test_the_console_follows_an_event_a_queue_and_a_metric(sluice, printed, app_and_key, browser):
    from playwright.sync_api import expect

    app_id, key = app_and_key
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{sluice.api_url}/_local/console/")
    expect(page.locator('[data-widget="Ingest outcomes per minute"]')).to_be_visible()
    dead_letters = page.locator('[data-queue="EventsDeadLetterQueue"] [data-column="visible"]')
    expect(dead_letters).to_have_text(re.compile(r"^\d+$"))
    dead_before = int(dead_letters.inner_text())

    # An event sent through the API appears, and is followed until it is stored.
    status, body = send(sluice, app_id, key, {"eventName": "user_login", "userId": 42})
    assert status == 202
    row = page.locator(f'[data-event-id="{body["event_id"]}"]')
    expect(row.locator('[data-column="status"]')).to_have_text("stored (valid)", timeout=30_000)

    # The dashboard's widgets show what the functions printed.
    wait_for(lambda: printed.total("EventsStored") >= 1)
    for widget, metric in (
        ("Ingest outcomes per minute", "EventsAccepted"),
        ("Rows stored per minute", "EventsStored"),
    ):
        value = page.locator(f'[data-widget="{widget}"] [data-metric="{metric}"] .value')
        expect(value).to_have_text(f"{printed.total(metric):g}", timeout=15_000)

    # A message the store cannot read: retried, then the dead-letter queue's depth moves.
    sqs = sqs_client(sluice.sqs_url, sluice.config.region)
    sqs.send_message(QueueUrl=sluice.queue_urls["EventsQueue"], MessageBody="not an events message")
    expect(dead_letters).to_have_text(str(dead_before + 1), timeout=60_000)
    page.locator('[data-redrive="EventsDeadLetterQueue"]').click()
    expect(page.locator("#redrive-result")).to_contain_text(
        f"{dead_before + 1} message(s) moved back", timeout=30_000
    )

    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert problems == []
    page.close()


def test_the_dashboard_and_alarms_name_only_metrics_the_functions_print(
    sluice, printed, app_and_key
):
    app_id, key = app_and_key
    # Given every function that prints metrics has run: ingest and store...
    assert send(sluice, app_id, key, {"eventName": "user_login", "userId": "x"})[0] == 422
    assert send(sluice, app_id, key, {"no": "name"})[0] == 400  # rejected: printed only then
    wait_for(lambda: "EventsStored" in printed.names())
    # ...accounts and email (a registration mails a code)...
    registration = {"email": f"{uuid.uuid4().hex}@example.com", "password": uuid.uuid4().hex}
    status, _, _ = http(
        "POST",
        f"{sluice.api_url}/api/accounts/register",
        json.dumps(registration).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 202
    wait_for(lambda: "EmailsSent" in printed.names())
    # ...and aggregate.
    sluice.fire("AggregateFunction", "Schedule")
    wait_for(lambda: "AggregationLag" in printed.names())

    # Then every Sluice metric the dashboard draws or an alarm watches was printed.
    resources = translate(load_template(), {"Environment": "dev"})["Resources"]
    named = sluice_metric_names(resources)
    assert named, "the stack reads no Sluice metric"
    assert named <= printed.names(), f"never printed: {sorted(named - printed.names())}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    rest=st.sampled_from(["", "data", "redrive", "console.js", "index.html", "../template.yaml"])
    | st.text(alphabet=st.characters(codec="ascii", exclude_characters="?#"), max_size=30),
    body=st.one_of(
        st.none(),
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.sampled_from(["queue", "x"]), inner, max_size=3)
            ),
            max_leaves=8,
        ).map(lambda value: json.dumps(value).encode()),
    ),
)
def test_hostile_requests_to_the_console_get_no_server_error(sluice, method, rest, body):
    from urllib.parse import quote

    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, _, _ = http(method, f"{sluice.api_url}/_local/console/{quote(rest)}", body, headers)
    assert status < 500


def test_the_console_never_serves_files_outside_its_folder(sluice):
    for path in ("..%2Ftemplate.yaml", "%2E%2E/%2E%2E/template.yaml", "uPlot.LICENSE"):
        status, _, data = http("GET", f"{sluice.api_url}/_local/console/{path}")
        assert status == 404, path
        assert b"AWSTemplateFormatVersion" not in data


def test_a_page_elsewhere_cannot_redrive(sluice):
    status, _, _ = http(
        "POST",
        f"{sluice.api_url}/_local/console/redrive",
        b'{"queue": "EventsDeadLetterQueue"}',
        {"Content-Type": "application/json", "Origin": "http://attacker.example"},
    )
    assert status == 403


def test_only_a_dead_letter_queue_is_redriven(sluice):
    status, _, data = http(
        "POST",
        f"{sluice.api_url}/_local/console/redrive",
        b'{"queue": "EventsQueue"}',
        {"Content-Type": "application/json"},
    )
    assert status == 400
    assert b"EventsDeadLetterQueue" in data
