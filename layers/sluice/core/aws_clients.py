"""Every AWS client a function makes, each with a deadline that fits the function's timeout.

botocore's defaults (60 s to connect, 60 s to read, retries) let one call to an
endpoint that drops packets outlive any of Sluice's functions: ingest would run
into its Lambda timeout and API Gateway answer 500 instead of Sluice's 503. Here
each client gets the function's AwsSettings (sluice.core.config), and
`worst_call_seconds` says how long one call can then take: what
tests/infra/test_deadlines.py adds up against each function's Timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.core.config import AwsSettings

if TYPE_CHECKING:  # Powertools' parameters and botocore load only when a client is made
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from botocore.config import Config

# botocore's standard retry mode: before retry i (1-based) it waits at most
# min(2^(i-1), 20) s, and up to 5 s more when the answer carries x-amz-retry-after
# (botocore.retries.standard.ExponentialBackoff).
RETRY_MODE = "standard"
_MAX_BACKOFF_SECONDS = 20.0
_RETRY_AFTER_EXTRA_SECONDS = 5.0


def client_config(aws: AwsSettings, *, check_parameters: bool = True) -> Config:
    from botocore.config import Config

    return Config(
        connect_timeout=aws.connect_timeout,
        read_timeout=aws.read_timeout,
        # total_max_attempts counts the first call; botocore's max_attempts counts only
        # the retries after it (one more connection than it reads like).
        retries={"mode": RETRY_MODE, "total_max_attempts": aws.max_attempts},
        parameter_validation=check_parameters,
    )


def client(service: str, aws: AwsSettings, *, check_parameters: bool = True) -> Any:
    """A boto3 client for `service` whose calls give up within worst_call_seconds(aws).

    `check_parameters=False` skips botocore's check of each call's parameters against
    the API model (presence and types, before sending), for a caller on the hot path
    whose parameters are right by construction; the service still checks their values.
    """
    import boto3

    return boto3.client(service, config=client_config(aws, check_parameters=check_parameters))


def secrets_provider(aws: AwsSettings) -> SecretsProvider:
    """Powertools' Secrets Manager provider (its cache included) on such a client."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager", aws))


def worst_call_seconds(aws: AwsSettings) -> float:
    """The longest one call can take: every attempt times out, the longest backoff between.

    A read timeout bounds each wait for bytes, not a whole answer: an endpoint that
    trickles its answer could take longer, one that hangs or drops packets cannot.
    """
    attempts = aws.max_attempts * (aws.connect_timeout + aws.read_timeout)
    backoff = sum(
        min(2.0 ** (retry - 1), _MAX_BACKOFF_SECONDS) + _RETRY_AFTER_EXTRA_SECONDS
        for retry in range(1, aws.max_attempts)
    )
    return attempts + backoff
