"""Shapes of other people's SAM templates, run as Lambda runs them (the fidelity/ template)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.__main__ import banner
from local_runtime.runtime import Runtime, RuntimeConfig
from local_runtime.sqs import sqs_client
from local_runtime.template import LocalValues, TemplateError, load
from tests.local_runtime.conftest import CollectedLogs, collected_logs, http, lines, received
from tests.support import wait_for

FIDELITY = Path(__file__).parent / "fidelity"
LOCAL = LocalValues(
    region="us-east-1",
    api_url="http://127.0.0.1:3000",
    aws_endpoint_url="http://127.0.0.1:5000",
    state_dir="/state",
)


def fidelity_settings(folder: Path, **resources: dict) -> Path:
    settings = json.loads((FIDELITY / "settings.json").read_text())
    settings["Resources"].update(resources)
    path = folder / "settings.json"
    path.write_text(json.dumps(settings))
    return path


def fidelity_runtime(folder: Path, database_url: str, **config) -> Runtime:
    return Runtime(
        RuntimeConfig(
            template=FIDELITY / "template.yaml",
            settings=fidelity_settings(folder),
            state_dir=folder / "state",
            port=0,
            database_url=database_url,  # local_queue's
            **config,
        )
    )


@pytest.fixture(scope="module")
def handler_logs() -> Iterator[CollectedLogs]:
    with collected_logs("local_runtime.handler") as collected:
        yield collected


@pytest.fixture(scope="module")
def fidelity(tmp_path_factory, handler_logs, module_queue_database) -> Iterator[Runtime]:
    folder = tmp_path_factory.mktemp("fidelity")
    runtime = fidelity_runtime(folder, module_queue_database, drain_seconds=1).start()
    yield runtime
    runtime.stop()


def test_inline_code_runs_as_index_py_and_its_info_logs_show_as_lambdas(fidelity, handler_logs):
    status, _, body = http(
        "POST",
        fidelity.api_url + "/_local/invoke/InlineFunction",
        json.dumps({"name": "ada"}).encode(),
        {"Content-Type": "application/json"},
    )

    assert status == 200
    assert json.loads(body)["result"] == {"inline": True, "name": "ada"}
    # The handler lowered the root logger to INFO, so Lambda's text line shows it:
    # [LEVEL]<tab>time<tab>request id<tab>message
    line = wait_for(
        lambda: next((m for m in handler_logs.messages if "inline handler got ada" in m), None)
    )
    level, moment, request_id, message = line.split(" | ", 1)[1].split("\t")
    assert (level, message) == ("[INFO]", "inline handler got ada")
    assert moment.endswith("Z") and request_id == json.loads(body)["requestId"]


def test_an_explicit_event_source_mapping_delivers_its_queue(fidelity, handler_logs):
    client = sqs_client(fidelity.sqs_url, "us-east-1")
    client.send_message(QueueUrl=fidelity.queue_urls["JobsQueue"], MessageBody='{"job": 1}')

    notes = wait_for(lambda: lines(fidelity.state_dir / "fidelity-MappedFunction.jsonl"))
    record = notes[0]["event"]["Records"][0]
    assert record["body"] == '{"job": 1}'
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:fidelity-JobsQueue"
    # LogFormat JSON: INFO shows with no level set in the code, as a JSON object
    entry = wait_for(
        lambda: next((m for m in handler_logs.messages if "record got an event" in m), None)
    )
    logged = json.loads(entry.split(" | ", 1)[1])
    assert logged["level"] == "INFO" and logged["logger"] == "app"
    assert logged["requestId"]


def test_a_scheduler_schedule_fires_its_target_with_its_input(fidelity):
    notes = wait_for(lambda: lines(fidelity.state_dir / "fidelity-ScheduledFunction.jsonl"))

    assert notes[0]["event"] == {"from": "scheduler"}


def test_a_failing_async_invocation_is_retried_then_sent_to_its_destination_and_dlq(fidelity):
    status, _, body = http("POST", fidelity.api_url + "/_local/schedules/FailingFunction/Hourly")
    assert status == 200 and json.loads(body)["error"]["errorType"] == "RuntimeError"

    # MaximumRetryAttempts 1: two attempts in all, then the OnFailure destination
    failures = wait_for(lambda: received(fidelity, "FailuresQueue"))
    record = json.loads(failures[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith(":fidelity-FailingFunction:$LATEST")
    assert record["responsePayload"]["errorMessage"] == "this function always fails"
    assert record["requestPayload"]["detail-type"] == "Scheduled Event"
    attempts = lines(fidelity.state_dir / "fidelity-FailingFunction.jsonl")
    assert len(attempts) == 2
    # and the dead-letter queue gets the event itself, with Lambda's attributes
    dead = wait_for(
        lambda: [
            m
            for m in received(fidelity, "DeadLettersQueue")
            if json.loads(m["Body"])["resources"][0].endswith("FailingFunctionHourly")
        ]
    )
    assert json.loads(dead[0]["Body"]) == record["requestPayload"]
    assert dead[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == (
        "this function always fails"
    )


def test_by_default_lambda_retries_an_async_invocation_twice(fidelity):
    http("POST", fidelity.api_url + "/_local/schedules/DefaultRetriesFunction/Hourly")

    dead = wait_for(lambda: received(fidelity, "DeadLettersQueue"))
    assert json.loads(dead[0]["Body"])["source"] == "aws.scheduler"
    assert len(lines(fidelity.state_dir / "fidelity-DefaultRetriesFunction.jsonl")) == 3


def test_a_catch_all_route_receives_paths_under_the_runtimes_prefix(fidelity):
    for path in (
        "/_local/console/no-such-file",
        "/_local/invoke/NoSuchFunction",
        "/_local/health/x",
        "/a/b",
    ):
        status, _, body = http("GET", fidelity.api_url + path)
        assert (status, json.loads(body)) == (200, {"path": path})
    # while the runtime's exact paths stay its own
    status, _, body = http("GET", fidelity.api_url + "/_local/health")
    assert (status, json.loads(body)["status"]) == (200, "ok")


def test_what_cannot_run_is_named_at_start(fidelity):
    report = "\n".join(fidelity.not_run)

    assert "OldPythonFunction.Uploads: S3 events are not run locally" in report
    assert "NightlyRule (AWS::Events::Rule) invokes ScheduledFunction in AWS" in report
    assert "SendToQueue (AWS::ApiGatewayV2::Integration): an integration straight to SQS" in (
        report
    )
    assert "InlineFunction" not in report and "MappedFunction" not in report


def test_a_function_on_another_python_runs_and_the_banner_says_so_as_a_difference(fidelity):
    # It is invoked, so it is not among what does not run ...
    assert not any("python3.8" in line for line in fidelity.not_run)
    status, _, body = http(
        "POST",
        fidelity.api_url + "/_local/invoke/OldPythonFunction",
        b"{}",
        {"Content-Type": "application/json"},
    )
    assert status == 200 and "error" not in json.loads(body)

    # ... but the banner says where it differs from AWS.
    differs = [line for line in banner(fidelity).splitlines() if "python3.8" in line]
    assert differs == [
        f"  differs   OldPythonFunction: Runtime python3.8; it runs on this machine's"
        f" python{sys.version_info.major}.{sys.version_info.minor}"
    ]


def test_a_queue_hiding_messages_for_less_than_the_function_timeout_is_refused(tmp_path):
    settings = fidelity_settings(tmp_path, MappedFunction={"Timeout": 11})

    with pytest.raises(TemplateError, match="JobsQueue's visibility timeout .10 s. is less than"):
        load(FIDELITY / "template.yaml", settings).topology(LOCAL)


def test_a_clean_stop_does_not_wait_out_a_long_poll(tmp_path, queue_database):
    runtime = fidelity_runtime(tmp_path, queue_database, drain_seconds=1).start()
    # Given the trigger of a queue with ReceiveMessageWaitTimeSeconds 20, idle
    client = sqs_client(runtime.sqs_url, "us-east-1")
    client.send_message(QueueUrl=runtime.queue_urls["JobsQueue"], MessageBody='{"job": 2}')
    wait_for(lambda: lines(runtime.state_dir / "fidelity-MappedFunction.jsonl"))

    # When it stops, it is done well within the promised 10 s
    started = time.monotonic()
    runtime.stop()
    assert time.monotonic() - started < 10
