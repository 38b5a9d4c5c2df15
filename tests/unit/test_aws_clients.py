"""Every AWS client Sluice makes gives up on an endpoint that hangs, after its attempts."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import (
    ConnectTimeoutError,
    ParamValidationError,
    ReadTimeoutError,
)
from sluice.core import aws_clients
from sluice.core.config import AwsSettings

from tests.support import HangingEndpoint, answered_within, drain

SHORT = {"connect_timeout": 0.2, "read_timeout": 0.3}


@pytest.fixture
def stalling():
    endpoint = HangingEndpoint(accept=True)
    yield endpoint
    endpoint.close()


def _send(client) -> None:
    client.send_message(QueueUrl="https://sqs.us-east-1.amazonaws.com/1/q", MessageBody="x")


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_call_to_an_endpoint_that_never_answers_ends_after_its_attempts(
    stalling, monkeypatch, attempts
):
    # Given SQS at an endpoint that takes connections and never answers
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", stalling.url)
    client = aws_clients.client("sqs", AwsSettings(**SHORT, max_attempts=attempts))
    # When a call is made, then it fails with a read timeout, once per attempt
    with pytest.raises(ReadTimeoutError):
        answered_within(10, lambda: _send(client))
    assert stalling.connections == attempts


def test_a_call_to_an_endpoint_that_drops_connections_ends_at_the_connect_timeout(monkeypatch):
    dropping = HangingEndpoint(accept=False)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", dropping.url)
        client = aws_clients.client("sqs", AwsSettings(**SHORT, max_attempts=2))
        with pytest.raises(ConnectTimeoutError):
            answered_within(10, lambda: _send(client))
    finally:
        dropping.close()


def test_secrets_manager_through_powertools_has_the_same_deadline(stalling, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", stalling.url)
    provider = aws_clients.secrets_provider(AwsSettings(**SHORT, max_attempts=2))
    with pytest.raises(GetParameterError):
        answered_within(10, lambda: provider.get("arn:aws:secretsmanager:us-east-1:1:secret:x"))
    assert stalling.connections == 2


def test_the_worst_call_counts_every_attempt_and_the_longest_backoff():
    assert aws_clients.worst_call_seconds(AwsSettings(0.5, 1.0, 1)) == 1.5
    # Two retries: at most 1 s, then 2 s, each up to 5 s longer for x-amz-retry-after.
    assert aws_clients.worst_call_seconds(AwsSettings(0.5, 1.0, 3)) == 3 * 1.5 + (1 + 5) + (2 + 5)


def test_a_caller_that_builds_every_parameter_may_skip_botocores_checks_not_the_deadline(
    sqs, queues
):
    # botocore checks each call's parameters against the API model (presence and types)
    # before sending; a caller whose parameters are right by construction may skip that.
    settings = AwsSettings(**SHORT, max_attempts=2)
    checked = aws_clients.client("sqs", settings)
    unchecked = aws_clients.client("sqs", settings, check_parameters=False)
    # DelaySeconds is an integer in the model: checked, a string never leaves the client;
    # unchecked, it goes as it is, and SQS (moto here) takes or refuses it.
    with pytest.raises(ParamValidationError):
        checked.send_message(QueueUrl=queues["events"], MessageBody="x", DelaySeconds="0")
    unchecked.send_message(QueueUrl=queues["events"], MessageBody="x", DelaySeconds="0")
    assert drain(sqs, queues["events"]) == ["x"]
    config = unchecked.meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.2, 0.3)
    assert config.retries["total_max_attempts"] == 2
