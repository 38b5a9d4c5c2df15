"""API Gateway straight to SQS, run as API Gateway runs it (fidelity/integration/)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.__main__ import banner
from local_runtime.integrations import (
    RequestValues,
    render,
    unsupported_template,
    url_encode,
)
from local_runtime.runtime import Runtime
from local_runtime.sqs import sqs_client
from local_runtime.template import LocalValues, load
from tests.local_runtime.conftest import http, running
from tests.support import wait_for

FOLDER = Path(__file__).parent / "fidelity" / "integration"
LOCAL = LocalValues(region="us-east-1", api_url="http://127.0.0.1:3000", aws_endpoint_url="x")


@pytest.fixture(scope="module")
def integration(tmp_path_factory, module_queue_database) -> Iterator[Runtime]:
    state_root = tmp_path_factory.mktemp("integration")
    with running(FOLDER, state_root, module_queue_database) as runtime:
        yield runtime


def _take(runtime: Runtime) -> list[dict]:
    """Every message on the intake queue, deleted as read."""
    client = sqs_client(runtime.sqs_url, "us-east-1")
    url = runtime.queue_urls["IntakeQueue"]
    messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    )
    for message in messages:
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _post(runtime: Runtime, path: str, body: bytes, content_type: str = "application/json"):
    return http("POST", runtime.api_url + path, body, {"Content-Type": content_type})


def test_a_rest_api_sends_the_rendered_body_to_sqs_and_answers_with_sqs_answer(integration):
    body = b'{"order": "a&b=c", "note": "caf\xc3\xa9 + tea"}'

    status, headers, answer = _post(integration, "/orders", body)

    assert status == 200
    result = json.loads(answer)["SendMessageResponse"]["SendMessageResult"]
    assert result["MD5OfMessageBody"] == hashlib.md5(body).hexdigest()  # noqa: S324 - SQS's
    messages = wait_for(lambda: _take(integration))
    assert [m["Body"].encode() for m in messages] == [body]
    assert messages[0]["MessageId"] == result["MessageId"]


def test_a_body_the_template_does_not_url_encode_is_cut_at_its_first_ampersand(integration):
    # Action=SendMessage&MessageBody=$input.body: SQS reads "b" as a parameter of its own.
    status, _, _ = _post(integration, "/raw", b'{"order": "a&b"}')

    assert status == 200
    assert [m["Body"] for m in wait_for(lambda: _take(integration))] == ['{"order": "a']


def test_a_content_type_with_no_template_is_refused_when_passthrough_is_never(integration):
    status, _, answer = _post(integration, "/orders", b"order=1", "text/plain")

    assert (status, json.loads(answer)) == (415, {"message": "Unsupported Media Type"})


def test_an_http_api_sqs_send_message_integration_sends_the_request_body(integration):
    status, _, answer = _post(integration, "/events", b'{"event": "signup"}')

    assert status == 200
    sent = json.loads(answer)["SendMessageResponse"]["SendMessageResult"]
    messages = wait_for(lambda: _take(integration))
    assert [(m["MessageId"], m["Body"]) for m in messages] == [
        (sent["MessageId"], '{"event": "signup"}')
    ]


def test_what_cannot_be_rendered_exactly_is_named_at_start_and_not_served(integration):
    report = "\n".join(integration.not_run)

    assert "RestQueueApi (AWS::Serverless::Api) POST /loops: its mapping template uses" in report
    assert "HttpQueueApi (AWS::Serverless::HttpApi) POST /tagged: its request parameter" in report
    assert "RawSendMethod (AWS::ApiGateway::Method): an integration straight to SQS" in report
    assert "/orders" not in report and "/events" not in report
    status, _, _ = _post(integration, "/loops", b'{"name": "x"}')
    assert status == 404
    assert "  route     POST /orders -> SQS SendMessage IntakeQueue" in banner(integration)


def test_the_mapping_template_subset_renders_as_api_gateway_does():
    values = RequestValues(
        body='{"a": [1, 2],  "b": "x y~*"}',
        request_id="r-1",
        headers={},
        query={},
        path={},
    )

    assert render("id=$context.requestId&j=$input.json('$')", values) == (
        'id=r-1&j={"a":[1,2],"b":"x y~*"}'
    )
    # Java's URLEncoder: space as +, * kept, ~ escaped
    assert url_encode("x y~*&é") == "x+y%7E*%26%C3%A9"
    assert render("price=$5&b=$util.urlEncode($input.body)", values).startswith("price=$5&b=%7B")
    assert unsupported_template("Action=SendMessage&MessageBody=$input.path('$.name')")
    assert unsupported_template("Action=SendMessage&MessageAttribute.1.Name=x&MessageBody=y")
    assert unsupported_template("Action=SendMessage&MessageBody=$util.urlEncode($input.body)") is (
        None
    )


def test_a_definition_body_from_aws_include_is_named_not_refused(tmp_path):
    # Given an API whose OpenAPI document CloudFormation includes from S3
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  IncludedApi:\n"
        "    Type: AWS::Serverless::Api\n"
        "    Properties:\n"
        "      StageName: prod\n"
        "      DefinitionBody:\n"
        "        Fn::Transform:\n"
        "          Name: AWS::Include\n"
        "          Parameters: {Location: s3://bucket/openapi.yaml}\n"
    )

    topology = load(tmp_path / "template.yaml").topology(LOCAL)

    assert topology.not_run == [
        "IncludedApi (AWS::Serverless::Api): its DefinitionBody is an Fn::Transform"
        " (AWS::Include), not read locally: only its functions' Events are routed"
    ]
