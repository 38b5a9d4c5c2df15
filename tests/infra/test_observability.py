"""The dashboard and the alarms, as CloudFormation receives them.

That every Sluice metric named here is one the functions really print is checked
against a local run's EMF lines (tests/e2e/test_console.py).
"""

from __future__ import annotations

import pytest

from tests.infra.stack import REPO_ROOT, of_type, referenced
from tests.observability import alarm_metrics, alarms, dashboard_body, widget_metrics

# The failure modes of issue 13 and the alarm that catches each
# (docs/operating-in-aws.md, "Alarms").
FAILURE_ALARMS = {
    "database outage": ("StoreDatabaseUnavailableAlarm", "Sluice", "DatabaseUnavailable"),
    "poison event": ("DeadLetterQueueAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    "poison email request": (
        "EmailDeadLetterQueueAlarm",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    ),
    "stuck events queue": ("EventsQueueStuckAlarm", "AWS/SQS", "ApproximateAgeOfOldestMessage"),
    "stuck email queue": ("EmailQueueStuckAlarm", "AWS/SQS", "ApproximateAgeOfOldestMessage"),
    "failing email path": ("EmailDeliveryFailingAlarm", "Sluice", "EmailsThrottled"),
    "misconfigured email sending": ("EmailMisconfiguredAlarm", "Sluice", "EmailsMisconfigured"),
    "stalled aggregation": ("AggregationStalledAlarm", "Sluice", "AggregationLag"),
    "API 5xx": ("Api5xxAlarm", "AWS/ApiGateway", "5xx"),
    "store crashing": ("StoreErrorsAlarm", "AWS/Lambda", "Errors"),
    "ingest cannot queue": ("IngestQueueFailuresAlarm", "Sluice", "EventsFailed"),
    "database disk running out": ("FreeStorageSpaceAlarm", "AWS/RDS", "FreeStorageSpace"),
    "maintenance failing": ("MaintainErrorsAlarm", "AWS/Lambda", "Errors"),
}


@pytest.fixture(scope="module")
def operating_docs() -> str:
    return (REPO_ROOT / "docs" / "operating-in-aws.md").read_text()


@pytest.mark.parametrize("failure", FAILURE_ALARMS)
def test_every_failure_mode_has_an_alarm_on_its_metric(resources, failure):
    name, namespace, metric = FAILURE_ALARMS[failure]
    assert (namespace, metric) in {(n, m) for n, m, _ in alarm_metrics(resources[name])}


def test_every_alarm_notifies_the_topic_and_is_in_the_operating_docs(resources, operating_docs):
    assert set(alarms(resources)) == {name for name, *_ in FAILURE_ALARMS.values()}
    for name, alarm in alarms(resources).items():
        actions = alarm["Properties"]["AlarmActions"]["Fn::If"]
        assert actions[0] == "HasAlarmEmail" and actions[1] == [{"Ref": "AlarmTopic"}]
        assert f"`{name}`" in operating_docs, f"the operating docs' alarm table lacks {name}"


def test_a_database_outage_alarm_sees_what_lambda_errors_cannot(resources):
    # The store hands the batch back (no error), printing DatabaseUnavailable=1 each time.
    properties = resources["StoreDatabaseUnavailableAlarm"]["Properties"]
    assert properties["Period"] * properties["EvaluationPeriods"] <= 300  # long before the DLQ
    assert properties["TreatMissingData"] == "notBreaching"


def test_a_misconfigured_email_path_alarms_at_once_and_is_not_counted_as_throttling(resources):
    # Never normal, unlike throttling: the first minute with one is enough.
    properties = resources["EmailMisconfiguredAlarm"]["Properties"]
    assert (properties["Period"], properties["EvaluationPeriods"], properties["Threshold"]) == (
        60,
        1,
        0,
    )
    failing = {m for _, m, _ in alarm_metrics(resources["EmailDeliveryFailingAlarm"])}
    assert "EmailsMisconfigured" not in failing


def test_a_stopped_aggregation_schedule_alarms_too(resources):
    assert resources["AggregationStalledAlarm"]["Properties"]["TreatMissingData"] == "breaching"


def test_sluice_metrics_use_only_the_service_dimension(resources):
    body, _ = dashboard_body(resources)
    lines = [line for widget in body["widgets"] for line in widget_metrics(widget)]
    lines += [line for alarm in alarms(resources).values() for line in alarm_metrics(alarm)]
    sluice = [dimensions for namespace, _, dimensions in lines if namespace == "Sluice"]
    assert sluice and all(dimensions == {"service": "sluice"} for dimensions in sluice)


def test_the_dashboard_refers_only_to_the_stacks_own_resources(resources):
    _, names = dashboard_body(resources)
    for name in names:
        logical_id = name.split(".")[0]
        assert logical_id.startswith("AWS::") or logical_id in resources, name


def lines_of(body, title_word: str) -> list[tuple[str, str, dict[str, str]]]:
    return [
        line
        for widget in body["widgets"]
        if title_word.lower() in widget["properties"]["title"].lower()
        for line in widget_metrics(widget)
    ]


def test_the_dashboard_draws_every_queue_and_function(resources):
    body, _ = dashboard_body(resources)
    queues = {f"{name}.QueueName" for name in of_type(resources, "AWS::SQS::Queue")}
    functions = set(of_type(resources, "AWS::Lambda::Function"))
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        drawn = {d["QueueName"] for _, name, d in lines_of(body, "") if name == metric}
        assert drawn == queues, metric
    for metric in ("Errors", "Throttles", "Duration", "ConcurrentExecutions"):
        drawn = {d["FunctionName"] for ns, name, d in lines_of(body, "") if name == metric}
        assert drawn == functions, metric


@pytest.mark.parametrize(
    ("title_word", "metrics"),
    [
        ("API requests", {("AWS/ApiGateway", "Count")}),
        ("API latency", {("AWS/ApiGateway", "Latency")}),
        ("4xx", {("AWS/ApiGateway", "4xx"), ("AWS/ApiGateway", "5xx")}),
        ("ingest outcomes", {("Sluice", m) for m in ("EventsAccepted", "EventsInvalid")}),
        ("ingest outcomes", {("Sluice", m) for m in ("EventsRejected", "EventsFailed")}),
        ("rows stored", {("Sluice", "EventsStored")}),
        ("store batches", {("Sluice", "BatchSize"), ("Sluice", "BatchDuration")}),
        ("database", {("AWS/RDS", "DatabaseConnections"), ("AWS/RDS", "CPUUtilization")}),
        ("emails", {("Sluice", m) for m in ("EmailsSent", "EmailsThrottled")}),
        ("emails", {("Sluice", "EmailsMisconfigured")}),
        ("aggregation lag", {("Sluice", "AggregationLag")}),
    ],
)
def test_the_dashboard_has_the_widgets_operators_need(resources, title_word, metrics):
    body, _ = dashboard_body(resources)
    assert metrics <= {(ns, name) for ns, name, _ in lines_of(body, title_word)}


def test_latency_is_drawn_at_p50_and_p99(resources):
    body, _ = dashboard_body(resources)
    [widget] = [w for w in body["widgets"] if "latency" in w["properties"]["title"].lower()]
    stats = {line[-1]["stat"] for line in widget["properties"]["metrics"]}
    assert stats == {"p50", "p99"}


def test_the_api_metrics_name_the_http_api(resources):
    body, _ = dashboard_body(resources)
    api = [d for ns, _, d in lines_of(body, "") if ns == "AWS/ApiGateway"]
    assert api and all(d == {"ApiId": "IngestApi"} for d in api)
    dimension = alarms(resources)["Api5xxAlarm"]["Properties"]["Dimensions"][0]["Value"]
    assert referenced(dimension) == "IngestApi"
