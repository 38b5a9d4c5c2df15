"""SES's refusals, each named for what it is (issue 24, item 3).

Throttling and SES's own faults come back later (`EmailsThrottled`); a configuration or
permission SES holds against every message (`EmailsMisconfigured`, its own alarm) comes
back too, until the DLQ, so nothing is lost once it is fixed and redriven; a refusal of
one message is recorded and not retried (`EmailsRejected`); a code Sluice does not know
comes back as a failure (`EmailRequestsFailed`), never as throttling.

A real SESv2 client behind botocore's Stubber answers each error as SES would (code,
status, message); moto's own SES answers the unverified sender.
"""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.stub import Stubber

import functions.email.app as email_app
from tests.handlers.test_accounts import PASSWORD, call, mail_to, printed_metrics
from tests.support import drain, sqs_event

ADDRESS = "new.owner@example.com"
NOT_VERIFIED = (
    "Email address is not verified. The following identities failed the check in region"
    f" US-EAST-1: {ADDRESS}"
)
DENIED = (
    "User `arn:aws:sts::123456789012:assumed-role/sluice-email/sluice-email' is not"
    " authorized to perform `ses:SendEmail' on resource"
    f" `arn:aws:ses:us-east-1:123456789012:identity/{ADDRESS}'"
)

# (SES's code, HTTP status, SES's message, what Sluice makes of it)
ANSWERS = [
    ("TooManyRequestsException", 429, "Maximum sending rate exceeded.", "throttled"),
    ("LimitExceededException", 400, "Daily message quota exceeded.", "throttled"),
    ("Throttling", 400, "Rate exceeded", "throttled"),
    ("InternalServiceErrorException", 500, "Internal error", "throttled"),
    ("AccessDeniedException", 403, DENIED, "misconfigured"),
    ("AccountSuspendedException", 400, "Sending is suspended for this account.", "misconfigured"),
    ("SendingPausedException", 400, "Sending paused for this account.", "misconfigured"),
    ("MailFromDomainNotVerifiedException", 400, "MAIL FROM domain not verified", "misconfigured"),
    ("NotFoundException", 404, "Configuration set <sluice> does not exist.", "misconfigured"),
    ("MessageRejected", 400, NOT_VERIFIED, "misconfigured"),
    ("MessageRejected", 400, f"Address blacklisted: {ADDRESS}", "rejected"),
    ("BadRequestException", 400, f"Illegal address {ADDRESS}", "rejected"),
    ("SomethingNewException", 400, f"No idea about {ADDRESS}", "failed"),
]
METRICS = {
    "throttled": "EmailsThrottled",
    "misconfigured": "EmailsMisconfigured",
    "rejected": "EmailsRejected",
    "failed": "EmailRequestsFailed",
}


@pytest.fixture
def stubbed_ses(aws):
    """A real SESv2 client whose answers the test writes; no request leaves it."""
    client = boto3.client("sesv2")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def request_email(context, sqs, email_queue) -> dict:
    """One registration's email request, as the SQS event the email function receives."""
    status, _, _ = call(context, "/api/accounts/register", {"email": ADDRESS, "password": PASSWORD})
    assert status == 202
    return sqs_event(drain(sqs, email_queue))


def warnings(caplog) -> list[dict]:
    """The fields of each warning the functions logged (Powertools keeps them on the record)."""
    return [
        {"message": r.getMessage(), **r.__dict__}
        for r in caplog.records
        if r.levelno == logging.WARNING and not r.name.startswith(("botocore", "moto", "urllib3"))
    ]


def delivery(db) -> tuple:
    with db.cursor() as cur:
        cur.execute("SELECT state, reason, claimed_until <= updated_at FROM email_deliveries")
        return cur.fetchone()


@pytest.mark.parametrize(
    ("code", "status", "message", "outcome"),
    ANSWERS,
    ids=[f"{code}-{outcome}" for code, _, _, outcome in ANSWERS],
)
def test_each_ses_error_is_named_for_what_it_is(
    db, accounts, make_mailer, stubbed_ses, sqs, email_queue, context, capsys, caplog,
    code, status, message, outcome,
):  # fmt: skip
    # Given SES answering this error to the send
    client, stubber = stubbed_ses
    stubber.add_client_error(
        "send_email", service_error_code=code, service_message=message, http_status_code=status
    )
    make_mailer(client)
    event = request_email(context, sqs, email_queue)
    capsys.readouterr()
    caplog.clear()

    # When the email function takes the request
    result = email_app.handler(event, context)
    output = capsys.readouterr()

    # Then its metric counts it, and no other failure's
    printed = printed_metrics(output.out)
    assert {METRICS[o]: printed[METRICS[o]] for o in METRICS} == {
        name: int(o == outcome) for o, name in METRICS.items()
    }
    assert printed["EmailsSent"] == 0
    # And a refused message is settled; anything else comes back (the DLQ after five)
    if outcome == "rejected":
        assert result == {"batchItemFailures": []}
        assert delivery(db) == ("rejected", code, None)
    else:
        failed = [{"itemIdentifier": event["Records"][0]["messageId"]}]
        assert result == {"batchItemFailures": failed}
        # released: the next receive claims it at once and sends
        assert delivery(db) == ("sending", None, True)
    # And the warning names SES's code, never the address (SES's message holds it)
    (warning,) = warnings(caplog)
    assert warning["error"] == code
    assert ADDRESS not in repr(warning) + output.out + output.err


def test_a_misconfiguration_loses_nothing_once_fixed(
    db, accounts, make_mailer, stubbed_ses, sqs, email_queue, context, capsys
):
    # Given sending paused on the account, then resumed by its owner
    client, stubber = stubbed_ses
    stubber.add_client_error(
        "send_email", service_error_code="SendingPausedException", http_status_code=400
    )
    stubber.add_response("send_email", {"MessageId": "0100-resumed"})
    make_mailer(client)
    event = request_email(context, sqs, email_queue)
    capsys.readouterr()

    # When the request comes back after the fix (a retry, or a redrive from the DLQ)
    first = email_app.handler(event, context)
    first_metrics = printed_metrics(capsys.readouterr().out)
    second = email_app.handler(event, context)

    # Then the first was named a misconfiguration and sent back, the second sent once
    assert first_metrics["EmailsMisconfigured"] == 1
    assert len(first["batchItemFailures"]) == 1
    assert second == {"batchItemFailures": []}
    with db.cursor() as cur:
        cur.execute("SELECT state, ses_message_id, attempts FROM email_deliveries")
        assert cur.fetchall() == [("sent", "0100-resumed", 2)]


def test_moto_refusing_an_unverified_sender_is_a_misconfiguration(
    db, accounts, make_mailer, sqs, email_queue, context, capsys, caplog
):
    # Given a sender SES has not verified (moto's own refusal: MessageRejected)
    make_mailer(sender="someone@unverified.test")
    event = request_email(context, sqs, email_queue)
    capsys.readouterr()

    # When the email function takes the request
    result = email_app.handler(event, context)
    output = capsys.readouterr().out

    # Then it is named a misconfiguration and comes back, not recorded as rejected
    assert printed_metrics(output)["EmailsMisconfigured"] == 1
    assert len(result["batchItemFailures"]) == 1
    assert delivery(db) == ("sending", None, True)
    assert mail_to(ADDRESS) == []
    assert "someone@unverified.test" not in output + repr(warnings(caplog))
