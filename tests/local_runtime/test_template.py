"""Reading a SAM template into what runs locally: no processes, just the loader and resolver."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from local_runtime.template import LocalValues, TemplateError, load
from tests.local_runtime.conftest import SAMPLE

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = LocalValues(
    region="us-east-1",
    api_url="http://127.0.0.1:3000",
    aws_endpoint_url="http://127.0.0.1:5000",
    database_url="postgresql://localhost/sluice",
    state_dir="/state",
)


@pytest.fixture(scope="module")
def sluice():
    return load(REPO_ROOT / "template.yaml", REPO_ROOT / "local-env.json").topology(LOCAL)


def test_sluices_start_up_report_names_only_what_really_does_not_run(sluice):
    # The dashboard and the alarms name functions, but only to read their metrics.
    reported = sorted(line.split(" ")[0] for line in sluice.not_run)
    assert reported == [
        "AccessLogSettings",
        "Architectures",
        "AutoPublishAlias",
        "DefaultRouteSettings",
        "Migrations",
        "Policies",
        "Tracing",
        "VpcConfig",
    ]


def test_sluices_ingest_api_carries_its_cors_configuration(sluice):
    # local-env.json sets CorsAllowedOrigins to "*" (the template has no default).
    cors = sluice.cors["IngestApi"]
    assert cors.allow_origins == ("*",)
    assert {"content-type", "authorization", "x-retry-count"} <= set(cors.allow_headers)
    assert "POST" in cors.allow_methods


def test_sluices_routes_go_to_ingest_accounts_and_manage_with_payload_2(sluice):
    routes = [(r.route_key, r.function, r.payload_version) for r in sluice.routes]
    assert routes[:3] == [
        ("POST /api/logs/{app_id}", "IngestFunction", "2.0"),
        ("POST /api/logs/{app_id}/batch", "IngestFunction", "2.0"),
        ("POST /v1/{call}", "IngestFunction", "2.0"),  # Segment's Tracking API
    ]
    assert sorted(routes[3:]) == sorted(
        [
            ("GET /api/openapi.json", "ManageFunction", "2.0"),
            ("GET /api/accounts/me", "AccountsFunction", "2.0"),
            ("POST /api/accounts/password-reset", "AccountsFunction", "2.0"),
            ("POST /api/accounts/password-reset/confirm", "AccountsFunction", "2.0"),
            ("POST /api/accounts/register", "AccountsFunction", "2.0"),
            ("POST /api/accounts/sign-in", "AccountsFunction", "2.0"),
            ("POST /api/accounts/sign-in/verify", "AccountsFunction", "2.0"),
            ("POST /api/accounts/sign-out", "AccountsFunction", "2.0"),
            ("POST /api/accounts/verify", "AccountsFunction", "2.0"),
            ("DELETE /api/apps/{app_id}", "ManageFunction", "2.0"),
            ("DELETE /api/apps/{app_id}/keys/{key_id}", "ManageFunction", "2.0"),
            ("DELETE /api/apps/{app_id}/rules/{event_name}", "ManageFunction", "2.0"),
            ("GET /api/apps", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/keys", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/events", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/events/{event_id}", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/rejections", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/rules", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/rules/{event_name}", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/rules/{event_name}/versions", "ManageFunction", "2.0"),
            ("GET /api/apps/{app_id}/stats", "ManageFunction", "2.0"),
            ("GET /api/logs/{app_id}/events/{event_id}", "ManageFunction", "2.0"),
            ("PATCH /api/apps/{app_id}", "ManageFunction", "2.0"),
            ("POST /api/apps", "ManageFunction", "2.0"),
            ("POST /api/apps/{app_id}/keys", "ManageFunction", "2.0"),
            ("POST /api/apps/{app_id}/rules/{event_name}/restore", "ManageFunction", "2.0"),
            ("PUT /api/apps/{app_id}/rules/{event_name}", "ManageFunction", "2.0"),
            ("ANY /api/{proxy+}", "ManageFunction", "2.0"),  # every other path under /api/
        ]
    )


def test_sluices_store_trigger_takes_the_templates_batch_and_the_local_window(sluice):
    (trigger,) = [t for t in sluice.triggers if t.function == "StoreFunction"]
    assert (trigger.function, trigger.queue) == ("StoreFunction", "EventsQueue")
    # local-env.json: no window and batches of 10 (Lambda's limit without a window), so a
    # row is stored within ~0.1 s of its 202 at 10,000 events/s instead of waiting a window.
    assert trigger.batch_size == 10
    assert trigger.window_seconds == 0
    assert trigger.report_item_failures and trigger.enabled


def test_each_trigger_runs_as_many_batches_at_once_as_its_scaling_config_allows(sluice):
    from local_runtime.runtime import batches_in_flight

    by_function = {t.function: t for t in sluice.triggers}
    # local-env.json sets StoreMaxConcurrency to 3 (five small batches at once cost
    # PostgreSQL twice the CPU per single event on two cores, and the third waits for a
    # backlog: see the next test); EmailMaxConcurrency is 2
    assert by_function["StoreFunction"].max_concurrency == 3
    assert by_function["EmailFunction"].max_concurrency == 2
    five = dataclasses.replace(by_function["StoreFunction"], max_concurrency=5)
    assert batches_in_flight(five, 2, max_workers=8) == 5
    # no more pollers than the function has workers to run their batches
    assert batches_in_flight(five, 2, max_workers=3) == 3
    # a trigger without a ScalingConfig keeps the runtime's default
    unscaled = dataclasses.replace(by_function["StoreFunction"], max_concurrency=None)
    assert batches_in_flight(unscaled, 2, max_workers=8) == 2


def test_the_email_trigger_takes_ten_with_no_window(sluice):
    (trigger,) = [t for t in sluice.triggers if t.function == "EmailFunction"]
    assert (trigger.queue, trigger.batch_size, trigger.window_seconds) == ("EmailQueue", 10, 0)
    assert trigger.report_item_failures and trigger.enabled


def test_sluices_queues_are_created_dead_letter_first_with_local_overrides(sluice):
    order = list(sluice.queues)
    assert sorted(order) == [
        "EmailDeadLetterQueue",
        "EmailQueue",
        "EventsDeadLetterQueue",
        "EventsQueue",
    ]
    assert order.index("EventsDeadLetterQueue") < order.index("EventsQueue")
    assert order.index("EmailDeadLetterQueue") < order.index("EmailQueue")
    assert sluice.queues["EmailQueue"].attributes["VisibilityTimeout"] == "15"  # 180 in AWS
    events = sluice.queues["EventsQueue"]
    assert events.attributes["VisibilityTimeout"] == "15"  # 180 in the template
    assert events.attributes["MessageRetentionPeriod"] == "345600"
    assert events.dead_letter_arn == sluice.queues["EventsDeadLetterQueue"].arn
    assert events.max_receive_count == 5


def test_sluices_functions_get_local_values_for_their_references(sluice):
    ingest = sluice.functions["IngestFunction"]
    assert ingest.code_dir == REPO_ROOT / "functions" / "ingest"
    assert ingest.handler == "app.handler"
    assert ingest.layer_dirs == (REPO_ROOT / "layers",)
    assert ingest.timeout == 10  # Globals
    assert ingest.environment["EVENTS_QUEUE_URL"] == (
        "http://127.0.0.1:5000/123456789012/sluice-local-EventsQueue"
    )
    assert ingest.environment["DATABASE_URL"] == "postgresql://localhost/sluice"
    assert ingest.environment["POWERTOOLS_SERVICE_NAME"] == "sluice"  # Globals, merged
    assert ingest.environment["POWERTOOLS_LOG_LEVEL"] == "INFO"  # !Ref LogLevel
    assert ingest.environment["MAX_EVENT_BYTES"] == "32768"
    assert "DB_HOST" not in ingest.environment  # the RDS proxy has no local counterpart
    assert sluice.functions["StoreFunction"].timeout == 10  # 30 in the template
    assert sluice.unresolved == {}


def test_references_without_a_local_counterpart_are_reported():
    topology = load(REPO_ROOT / "template.yaml").topology(LOCAL)

    assert topology.unresolved["IngestFunction"] == ["DB_HOST", "DB_SECRET_ARN"]
    assert topology.functions["IngestFunction"].environment["DB_HOST"] == (
        "local-unresolved:DatabaseProxy.Endpoint"
    )


def test_the_sample_merges_globals_parameters_and_settings():
    topology = load(SAMPLE / "template.yaml", SAMPLE / "settings.json").topology(LOCAL)

    api = topology.functions["ApiFunction"]
    assert api.environment["GREETING"] == "hi from settings"
    assert (
        api.environment["JOBS_QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:sample-JobsQueue"
    )
    assert api.environment["OUTPUT_DIR"] == "/state"
    assert api.timeout == 1
    assert topology.queues["JobsDeadLetterQueue"].name == "sample-jobs-dlq"  # !Sub
    assert json.loads(topology.queues["JobsQueue"].attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:sample-jobs-dlq",
        "maxReceiveCount": 2,
    }
    assert {(s.event, s.expression, s.input) for s in topology.schedules} == {
        ("Hourly", "rate(1 second)", None),
        ("Nightly", "cron(0 3 * * ? *)", '{"job": "nightly"}'),
    }
    assert topology.triggers[0].batch_size == 5


def test_settings_naming_a_parameter_the_template_lacks_are_refused(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"Parameters": {"Nope": "1"}}))

    with pytest.raises(TemplateError, match="Nope"):
        load(SAMPLE / "template.yaml", settings)


def test_pollers_past_the_standing_ones_wait_for_a_backlog_but_not_on_a_fifo_queue(sluice):
    from local_runtime.runtime import pollers_scaling

    standard = sluice.queues["EventsQueue"]
    assert pollers_scaling(standard, 3, standing=2) == [False, False, True]
    assert pollers_scaling(standard, 2, standing=2) == [False, False]
    fifo = dataclasses.replace(standard, name="events.fifo")
    assert pollers_scaling(fifo, 3, standing=2) == [False, False, False]
