"""A second template, not Sluice's, run on the local runtime through real HTTP and real SQS calls.

Fixtures under fixtures/ are the canonical events, captured once with
`sam local generate-event apigateway http-api-proxy`, `... sqs receive-message`
and `... cloudwatch scheduled-event` (SAM CLI 1.170.0).
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from local_runtime.runtime import Runtime
from local_runtime.sqs import sqs_client
from tests.local_runtime.conftest import http, lines
from tests.support import wait_for

FIXTURES = Path(__file__).parent / "fixtures"

# Present in the sample only when the API has an mTLS domain, a JWT authorizer or
# stage variables; this sample's API has none of them.
ABSENT_WITHOUT_CONFIGURATION = {
    "requestContext.authentication",
    "requestContext.authorizer",
    "stageVariables",
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def shape_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every field of `expected` that `actual` lacks or holds as another JSON type."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '.'}: expected an object"]
        if path == "headers":  # the sample's names are made up (and not lower-cased)
            return [] if all(isinstance(v, str) for v in actual.values()) else [path]
        problems = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else key
            if where in ABSENT_WITHOUT_CONFIGURATION:
                continue
            if key not in actual:
                problems.append(f"{where}: missing")
            else:
                problems += shape_differences(value, actual[key], where)
        return problems
    if type(expected) is not type(actual):
        return [f"{path}: {type(actual).__name__}, expected {type(expected).__name__}"]
    return []


def echo(runtime: Runtime, path: str, **kwargs: Any) -> dict:
    status, _, body = http(kwargs.pop("method", "POST"), runtime.api_url + path, **kwargs)
    assert status == 200, body
    return json.loads(body)


def send_jobs(runtime: Runtime, *jobs: dict) -> None:
    status, _, body = http("POST", runtime.api_url + "/jobs", json.dumps(jobs).encode())
    assert status == 202, body


def processed(runtime: Runtime, *ids: str, timeout: float = 30.0) -> list[dict]:
    """Waits until every id was processed; returns their entries."""

    def done() -> list[dict]:
        entries = [e for e in lines(runtime.state_dir / "processed.jsonl") if e["id"] in ids]
        return entries if {e["id"] for e in entries} == set(ids) else []

    return wait_for(done, timeout=timeout)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------- API
def test_the_http_event_has_every_field_of_the_sam_sample_with_api_gateway_values(sample):
    # Given the request the SAM sample describes: repeated query values and headers,
    # two cookies and a body that is not text
    expected = fixture("http-api-proxy.json")
    raw = base64.b64decode(expected["body"])

    # When it goes through the local API
    reply = echo(
        sample,
        "/path/to/resource?" + expected["rawQueryString"],
        body=raw,
        headers={
            "Header1": "value1",
            "Header2": "value1,value2",
            "Cookie": "cookie1; cookie2",
            "Content-Type": "application/octet-stream",
        },
    )
    event = reply["event"]

    # Then the handler gets every field API Gateway sends, with its values
    assert shape_differences(expected, event) == []
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /path/to/{parameter1}"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/path/to/resource"
    assert event["rawQueryString"] == expected["rawQueryString"]
    assert event["queryStringParameters"] == expected["queryStringParameters"]
    assert event["cookies"] == expected["cookies"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["header1"] == "value1"
    assert event["headers"]["header2"] == "value1,value2"
    assert all(name == name.lower() for name in event["headers"])
    assert event["pathParameters"] == {"parameter1": "resource"}
    assert event["isBase64Encoded"] is True
    assert event["body"] == expected["body"]
    context = event["requestContext"]
    assert context["http"]["method"] == "POST"
    assert context["http"]["protocol"] == "HTTP/1.1"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["http"]["userAgent"].startswith("Python-urllib")
    assert context["stage"] == "$default"
    assert len(context["requestId"]) == 16
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60


def test_repeated_headers_join_with_commas_and_json_bodies_stay_text(sample):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", sample.api.port, timeout=30)
    connection.putrequest("POST", "/echo/bob?a=1&a=2&b=")
    connection.putheader("X-Many", "one")
    connection.putheader("X-Many", "two")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", "11")
    connection.endheaders(b'{"k": "v"}\n')
    event = json.loads(connection.getresponse().read())["event"]

    assert event["headers"]["x-many"] == "one,two"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["body"] == '{"k": "v"}\n'
    assert event["isBase64Encoded"] is False
    assert event["pathParameters"] == {"name": "bob"}
    assert "cookies" not in event


def test_a_handler_response_comes_back_as_api_gateway_returns_it(sample):
    status, headers, body = http("GET", sample.api_url + "/files/a/b/c.bin")

    assert status == 200
    assert body == b"\x00\x01binary"  # isBase64Encoded: decoded for the client
    assert headers["set-cookie"] == ["a=1", "b=2; Path=/"]
    assert headers["content-type"] == ["application/octet-stream"]
    assert headers["apigw-requestid"]


def test_a_result_without_a_status_code_is_a_200_json_body(sample):
    status, headers, body = http("GET", sample.api_url + "/sleep/0")

    assert (status, json.loads(body)) == (200, {"slept": True})
    assert headers["content-type"] == ["application/json"]


def test_a_path_no_route_matches_is_api_gateways_404(sample):
    status, _, body = http("GET", sample.api_url + "/nowhere")

    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_a_timeout_ends_the_invocation_and_the_next_one_starts_fresh(sample):
    # Given ApiFunction's local Timeout of 1 s
    started = time.monotonic()

    # When a request asks it to work for 30 s
    status, _, body = http("GET", sample.api_url + "/sleep/30")

    # Then API Gateway's 500 comes back once the timeout has ended the invocation: not
    # before the timeout, and before the 30 s the handler would have taken (how long
    # after 1 s depends only on how busy the machine is)
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert 1 <= time.monotonic() - started < 30
    # and the function answers the next request from a new worker
    assert echo(sample, "/echo/again", method="GET")["module"] == "api"


# ------------------------------------------------------------- isolation
def test_each_function_has_its_own_module_and_environment(sample):
    # Given two functions whose handlers are both app.py
    reply = echo(sample, "/echo/me", method="GET")
    job = new_id("isolation")
    send_jobs(sample, {"id": job})

    # Then each imported its own app module
    assert reply["module"] == "api"
    assert processed(sample, job)[0]["module"] == "worker"
    # with the template's variables (Globals merged, parameters and settings applied)
    assert reply["greeting"] == "hi from settings"
    assert reply["function"] == "sample-ApiFunction"
    assert 0 < reply["remaining_ms"] <= 1000
    environ = set(reply["environ"])
    assert {"JOBS_QUEUE_URL", "EXTRA", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME"} <= environ
    # and nothing of the shell that started the runtime
    assert "PYTEST_CURRENT_TEST" in os.environ
    assert "PYTEST_CURRENT_TEST" not in environ


# ------------------------------------------------------------------- SQS
def test_queue_records_have_the_shape_lambda_gives_them(sample):
    job = new_id("shape")
    client = sqs_client(sample.sqs_url, "us-east-1")
    client.send_message(
        QueueUrl=sample.queue_urls["JobsQueue"],
        MessageBody=json.dumps({"id": job}),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )

    record = processed(sample, job)[0]["record"]

    expected = fixture("sqs-receive-message.json")["Records"][0]
    assert shape_differences(expected, record) == []
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:sample-JobsQueue"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "test",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


def test_a_queue_message_reaches_the_handler_unchanged(sample):
    # The runtime writes the event it builds to its worker with orjson: every text exact
    job = new_id("exact")
    body = json.dumps({"id": job, "text": 'tab\t "quote" \\ héllo ✓ 𝄞 \u2028 null'})
    client = sqs_client(sample.sqs_url, "us-east-1")
    client.send_message(
        QueueUrl=sample.queue_urls["JobsQueue"],
        MessageBody=body,
        MessageAttributes={"kind": {"DataType": "Number", "StringValue": "18446744073709551616"}},
    )

    record = processed(sample, job)[0]["record"]

    assert record["body"] == body
    assert record["messageAttributes"]["kind"]["stringValue"] == "18446744073709551616"


@pytest.mark.parametrize(
    ("value", "delivered"),
    [
        ({"x": math.nan, "none": None}, None),  # orjson writes NaN as null
        ([math.inf, -math.inf, 0.1, None], None),
        ([2**64, -(2**63) - 1, 10**30], None),  # orjson refuses these
        ("\ud800 alone", None),
        ({1: "one"}, {"1": "one"}),  # as JSON carries it to Lambda
    ],
    ids=["nan", "infinities", "past-64-bits", "lone-surrogate", "int-keys"],
)
def test_an_invocation_reaches_the_handler_as_sent(sample, value, delivered):
    # What `make invoke` may send (Python's JSON reads all of it) and orjson would not
    # write exactly: the runtime writes it with the standard library.
    job = new_id("invoke")

    outcome = sample.invoke("TickFunction", {"job": job, "value": value})

    assert outcome.ok, outcome.error
    ticks = lines(sample.state_dir / "ticks.jsonl")
    [got] = [t["event"]["value"] for t in ticks if t["event"].get("job") == job]
    assert json.dumps(got) == json.dumps(value if delivered is None else delivered)


def test_a_poison_message_ends_in_the_dlq_while_the_others_are_processed(sample):
    # Given a batch with one message the handler always reports as failed
    good, bad, also_good = new_id("good"), new_id("poison"), new_id("good")
    send_jobs(sample, {"id": good}, {"id": bad, "do": "fail"}, {"id": also_good})

    # Then the good ones are processed once each
    entries = processed(sample, good, also_good)
    assert sorted(e["id"] for e in entries) == sorted([good, also_good])

    # and the poison one reaches the DLQ after maxReceiveCount (2) receives
    client = sqs_client(sample.sqs_url, "us-east-1")
    dlq = sample.queue_urls["JobsDeadLetterQueue"]

    def in_dlq() -> list[str]:
        messages = client.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            client.change_message_visibility(
                QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return [json.loads(m["Body"])["id"] for m in messages if bad in m["Body"]]

    assert wait_for(in_dlq) == [bad]
    assert len([e for e in lines(sample.state_dir / "processed.jsonl") if e["id"] == good]) == 1


def test_a_handler_that_raises_leaves_its_batch_to_come_back(sample):
    job = new_id("raise")
    send_jobs(sample, {"id": job, "do": "raise-once"})

    # The first receive raised; the message came back after its visibility timeout.
    assert processed(sample, job)[0]["receive_count"] == "2"


def test_a_queue_invocation_past_its_timeout_is_ended_and_retried(sample):
    job = new_id("slow")
    started = time.monotonic()
    send_jobs(sample, {"id": job, "do": "sleep-once"})  # sleeps 60 s, Timeout is 1 s

    # Retried (the second receive) before the first invocation's 60 s could have ended:
    # the timeout ended it. Timeout, visibility and a cold start take ~4 s when idle.
    assert processed(sample, job, timeout=50)[0]["receive_count"] == "2"
    assert time.monotonic() - started < 60


# ------------------------------------------------------------- schedules
def test_a_schedule_fires_on_its_own_with_eventbridges_event(sample):
    # rate(1 second) in the settings file, a local shortening of rate(1 hour)
    ticks = wait_for(
        lambda: [t for t in lines(sample.state_dir / "ticks.jsonl") if "detail-type" in t["event"]]
    )

    event = ticks[0]["event"]
    assert shape_differences(fixture("scheduled-event.json"), event) == []
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/TickFunctionHourly"]


def test_a_schedule_fires_on_demand_with_its_input(sample):
    status, _, body = http("POST", sample.api_url + "/_local/schedules/TickFunction/Nightly")

    assert status == 200
    assert json.loads(body)["result"] == {"ok": True}
    assert {"job": "nightly"} in [t["event"] for t in lines(sample.state_dir / "ticks.jsonl")]


def test_an_unknown_schedule_is_a_404(sample):
    status, _, _ = http("POST", sample.api_url + "/_local/schedules/TickFunction/Never")

    assert status == 404


@pytest.mark.parametrize("path", ["/_local/health"])
def test_the_runtime_answers_its_health_check(sample, path):
    status, _, body = http("GET", sample.api_url + path)

    # every helper probed: moto and local_queue (the fixture gives a database)
    assert (status, json.loads(body)) == (
        200,
        {"status": "ok", "helpers": {"moto": "ok", "local_queue": "ok"}},
    )


# ------------------------------------------------------- what a web page could forge
EVIL = "https://evil.example"


def worker_event(job: str) -> bytes:
    """An SQS event for WorkerFunction, as a page would forge it for /_local/invoke."""
    record = {
        "messageId": job,
        "body": json.dumps({"id": job}),
        "attributes": {"ApproximateReceiveCount": "1"},
    }
    return json.dumps({"Records": [record]}).encode()


def processed_ids(runtime: Runtime) -> set[str]:
    return {e["id"] for e in lines(runtime.state_dir / "processed.jsonl")}


@pytest.mark.parametrize(
    "headers",
    [
        # the request: a cross-site fetch(..., {mode: "no-cors"}) or form POST
        {"Content-Type": "text/plain", "Origin": EVIL},
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
        # another port of localhost is another origin, though the same site
        {"Content-Type": "text/plain", "Origin": "http://localhost:8080"},
        # a browser that sends only the fetch metadata, or neither header
        {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "text/plain"},
        # a page whose name was re-pointed at 127.0.0.1 (DNS rebinding) is same-origin
        {"Content-Type": "application/json", "Host": "evil.example"},
    ],
    ids=["origin", "null-origin", "other-port", "sec-fetch-site", "text-plain", "rebinding"],
)
def test_local_endpoints_refuse_what_a_web_page_could_send(sample, headers):
    job = new_id("forged")
    if headers.get("Host") == "evil.example":
        headers = {**headers, "Host": f"evil.example:{sample.api.port}"}

    status, answer_headers, body = http(
        "POST", sample.api_url + "/_local/invoke/WorkerFunction", worker_event(job), headers
    )

    assert status == 403, body
    assert not any(name.startswith("access-control-") for name in answer_headers)
    # The invoke endpoint answers only once the invocation is over: had it run, its
    # entry would be there now, as the same call without the forged parts shows.
    assert job not in processed_ids(sample)
    status, _, body = http(
        "POST",
        sample.api_url + "/_local/invoke/WorkerFunction",
        worker_event(job),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body
    assert job in processed_ids(sample)


def test_a_forged_schedule_fire_is_refused_and_curl_and_the_runtimes_own_origin_are_not(sample):
    fire = sample.api_url + "/_local/schedules/TickFunction/Nightly"

    def nightly() -> list[dict]:
        return [t for t in lines(sample.state_dir / "ticks.jsonl") if t["event"].get("job")]

    before = len(nightly())

    forged, _, _ = http("POST", fire, b"x=1", {"Origin": EVIL, "Content-Type": "text/plain"})
    assert (forged, len(nightly())) == (403, before)

    # curl -X POST (no body, no Content-Type), and a page the runtime itself served
    assert http("POST", fire)[0] == 200
    assert http("POST", fire, headers={"Origin": sample.api_url})[0] == 200
    assert len(nightly()) == before + 2


def test_the_templates_own_routes_still_answer_other_origins(sample):
    # The app's API is no local endpoint: it answers as the template declares it.
    status, _, body = http(
        "POST", sample.api_url + "/echo/cors", b"{}", {"Origin": EVIL, "Content-Type": "text/plain"}
    )

    assert status == 200, body
    assert json.loads(body)["event"]["headers"]["origin"] == EVIL


def test_moto_refuses_a_foreign_origin_and_grants_no_cors_but_serves_boto3(sample):
    client = sqs_client(sample.aws_endpoint_url, "us-east-1")
    name = new_id("forged")
    create = f"Action=CreateQueue&QueueName={name}&Version=2012-11-05".encode()

    # A cross-site form POST (the query protocol is form-encoded), a preflight, and a GET
    # an <img> could make: each refused, without a CORS header
    answers = [
        http(
            "POST",
            sample.aws_endpoint_url + "/",
            create,
            {
                "Origin": EVIL,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ),
        http(
            "OPTIONS",
            sample.aws_endpoint_url + "/",
            None,
            {
                "Origin": EVIL,
                "Access-Control-Request-Method": "POST",
            },
        ),
        http(
            "GET",
            sample.aws_endpoint_url + "/?" + create.decode(),
            None,
            {
                "Sec-Fetch-Site": "cross-site",
            },
        ),
    ]

    assert [status for status, _, _ in answers] == [403, 403, 403]
    assert all(not any(n.startswith("access-control-") for n in h) for _, h, _ in answers)
    # and nothing was made; boto3, which sends no Origin, is served as before
    assert not any(url.endswith(name) for url in client.list_queues().get("QueueUrls", []))
    url = client.create_queue(QueueName=name)["QueueUrl"]
    assert url.endswith(name)
