"""The email function's work: turn one email request into at most one email, through SES.

Delivery is at least once, deduplicated by the challenge (the business key), not by
the SQS message: email_deliveries holds one row per challenge, written in the same
transaction that makes the secret.

1. Claim (one transaction, the challenge row locked): a final delivery (sent, skipped,
   rejected) means a duplicate, done. A live claim by another delivery means retry
   later. Otherwise decide what the request becomes, make the secret if it needs one,
   store its hash, and claim the delivery for LEASE.
2. Send through SES (API v2).
3. Record: sent (with SES's message id) or rejected (SES's error code). Any other
   error of SES (`classify`) releases the claim and sends the request back: throttling,
   a misconfiguration of the account or stack, an error Sluice does not know.

The one window that sends a duplicate: SES accepted the email and the function died
(or the database went away) before step 3 committed. The request comes back after the
visibility timeout, the lease has run out, and a new secret is made and mailed; the
first email's code no longer works, since its hash was replaced.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sluice.accounts import accounts_data, challenges
from sluice.accounts.email_queue import EmailRequest
from sluice.core.clock import Clock
from sluice.core.config import EmailSettings
from sluice.core.db import Connection, Database
from sluice.core.observability import logger
from sluice.email import email_data as data
from sluice.email.email_templates import render

# Longer than a send can take (the function's timeout is 30 s), shorter than the
# queue's visibility timeout, so a crashed delivery's claim has lapsed when SQS
# hands the message out again.
LEASE = timedelta(seconds=60)

# What SES's errors (SESv2 SendEmail's, and those any AWS API answers) say, by code.
#
# Refusals of this one message, that no retry changes: record them, do not retry.
# MessageRejected: SES refused the content or the recipient (unless an identity is not
# verified: MISCONFIGURED); BadRequestException / InvalidParameterValue: a malformed address.
PERMANENT_ERRORS = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})
# Too fast for the account's sending rate (TooManyRequestsException, Throttling) or over
# its daily quota (LimitExceededException): retried, as are SES's own faults (5xx).
THROTTLING_ERRORS = frozenset(
    {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
)
# The account or the stack is wrong, and SES refuses every message until someone fixes it:
# the email role may not send as the sender (or, in the sandbox, to the recipient), the
# account's sending is paused or suspended, the MAIL FROM domain or the configuration set
# is missing. Retried until the DLQ, so a redrive after the fix loses nothing.
MISCONFIGURED_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
    }
)
# SES says a misconfiguration with MessageRejected and this message only: the sender's
# identity is not verified in the region, or the account is still in the sandbox and the
# recipient is not verified either. The message names the addresses: never logged.
_NOT_VERIFIED = "not verified"


def classify(error: ClientError) -> str:
    """throttled, misconfigured, rejected or unknown: what one SES error means for the request."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING_ERRORS or status >= 500:
        return "throttled"
    if code in MISCONFIGURED_ERRORS:
        return "misconfigured"
    if (
        code == "MessageRejected"
        and _NOT_VERIFIED in str(error.response["Error"].get("Message")).lower()
    ):
        return "misconfigured"
    if code in PERMANENT_ERRORS:
        return "rejected"
    return "unknown"


class RetryLater(Exception):
    """The request must come back (SES throttled or was unreachable, another delivery holds it)."""


class SesMisconfigured(RetryLater):
    """SES refuses every message until the account or the stack is fixed (MISCONFIGURED_ERRORS)."""


class SesFailed(Exception):
    """SES answered an error Sluice does not know: the request comes back, counted as failed."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request becomes: a template to mail to an address, or nothing (template None)."""

    template: str | None
    address: str | None = None
    secret: str | None = None
    minutes: int = 0
    outcome: str = "send"  # or: duplicate, skipped


def decide(conn: Connection, request: EmailRequest, now: datetime) -> Plan:
    """Step 1, inside the claiming transaction."""
    challenge = accounts_data.lock_pending_challenge(conn, request.challenge_id)
    if challenge is None:
        # Taken back by the accounts function after SQS refused the send (it answered 503),
        # or purged by the maintain function a week after it expired (a late redrive).
        return Plan(None, outcome="skipped")
    delivery = data.find_delivery(conn, request.challenge_id)
    if delivery is not None and delivery.state != "sending":
        return Plan(None, outcome="duplicate")
    if delivery is not None and delivery.claimed_until and delivery.claimed_until > now:
        raise RetryLater("another delivery of this request is under way")

    template, address, account_id = _what_to_send(conn, challenge)
    if template is None or challenge.used_at is not None or now >= challenge.expires_at:
        data.record_delivery(conn, challenge.challenge_id, state="skipped", now=now)
        return Plan(None, outcome="skipped")
    secret = None
    minutes = 0
    if template != "already_registered":
        if template == "password_reset":
            raw = challenges.new_token()
            secret = challenges.reset_token(challenge.challenge_id, raw)
            lifetime = challenges.TOKEN_LIFETIME
        else:
            raw = secret = challenges.new_code()
            lifetime = challenges.CODE_LIFETIME
        accounts_data.set_secret(
            conn,
            challenge.challenge_id,
            challenges.secret_hash(challenge.challenge_id, raw),
            account_id,
        )
        minutes = int(lifetime.total_seconds() // 60)
    data.record_delivery(
        conn,
        challenge.challenge_id,
        state="sending",
        now=now,
        template=template,
        claimed_until=now + LEASE,
        attempt=True,
    )
    return Plan(template, address, secret, minutes)


def _what_to_send(
    conn: Connection, challenge: accounts_data.PendingChallenge
) -> tuple[str | None, str | None, Any]:
    """(template, address, account to bind a reset to) for a challenge; template None: nothing."""
    if challenge.kind == "register":
        if accounts_data.find_account(conn, challenge.email) is not None:
            return "already_registered", challenge.email, None
        return "verify", challenge.email, None
    if challenge.kind == "sign_in":
        # An account only when the password was right (the accounts function checked).
        if challenge.account_id is None:
            return None, None, None
        return (
            "sign_in_code",
            accounts_data.account_email(conn, challenge.account_id),
            challenge.account_id,
        )
    account_id = accounts_data.find_account(conn, challenge.email)
    if account_id is None:
        return None, None, None
    return "password_reset", challenge.email, account_id


class Mailer:
    def __init__(self, settings: EmailSettings, database: Database, ses: Any, clock: Clock) -> None:
        self.settings = settings
        self.database = database
        self.ses = ses
        self.clock = clock

    def deliver(self, request: EmailRequest) -> str:
        """sent, rejected, skipped or duplicate; raises when the request must come back.

        RetryLater (SES throttled or unreachable), SesMisconfigured (a RetryLater: the
        account or the stack is wrong) or SesFailed (an error Sluice does not know).
        """
        plan = self.database.run(lambda conn: decide(conn, request, self.clock.now()))
        if plan.template is None:
            logger.info(
                "email request settled",
                kind=request.kind,
                outcome=plan.outcome,
                challenge_id=str(request.challenge_id),
            )
            return plan.outcome
        email = render(
            plan.template,
            product=self.settings.product_name,
            secret=plan.secret or "",
            minutes=plan.minutes,
        )
        if self.settings.local_echo:
            # make dev only (LOCAL_MAIL_ECHO=on in local-env.json; never in the template).
            print(  # the local printout is the point
                f"[local mail] {plan.template} for challenge {request.challenge_id}:"
                f" {plan.secret or '(no code)'}",
                file=sys.stderr,
                flush=True,
            )
        try:
            response = self.ses.send_email(**self._message(plan.address, email))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            kind = classify(exc)
            if kind == "rejected":
                self._record(request, "rejected", reason=code)
                logger.warning(
                    "ses rejected email",
                    template=plan.template,
                    error=code,
                    challenge_id=str(request.challenge_id),
                )
                return "rejected"
            self._release(request)
            if kind == "misconfigured":
                # SES's message is not logged: it names the addresses.
                logger.warning(
                    "ses refuses to send: sending is misconfigured; retrying until the DLQ",
                    template=plan.template,
                    error=code,
                    challenge_id=str(request.challenge_id),
                )
                raise SesMisconfigured(code) from exc
            if kind == "unknown":
                logger.warning(
                    "ses send failed with an unknown error; retrying later",
                    template=plan.template,
                    error=code,
                )
                raise SesFailed(code) from exc
            logger.warning("ses send failed; retrying later", template=plan.template, error=code)
            raise RetryLater(code) from exc
        except BotoCoreError as exc:
            self._release(request)
            logger.warning("ses unreachable; retrying later", error=type(exc).__name__)
            raise RetryLater(type(exc).__name__) from exc
        self._record(request, "sent", ses_message_id=response.get("MessageId"))
        logger.info("email sent", template=plan.template, challenge_id=str(request.challenge_id))
        return "sent"

    def _message(self, address: str | None, email: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "FromEmailAddress": self.settings.sender,
            "Destination": {"ToAddresses": [address]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                    },
                }
            },
        }
        if self.settings.configuration_set:
            message["ConfigurationSetName"] = self.settings.configuration_set
        return message

    def _record(self, request: EmailRequest, state: str, **fields: Any) -> None:
        now = self.clock.now()
        self.database.run(
            lambda conn: data.record_delivery(
                conn, request.challenge_id, state=state, now=now, **fields
            )
        )

    def _release(self, request: EmailRequest) -> None:
        """Lets the next delivery claim at once: this one sent nothing."""
        now = self.clock.now()
        self.database.run(
            lambda conn: data.record_delivery(
                conn, request.challenge_id, state="sending", now=now, claimed_until=now
            )
        )
