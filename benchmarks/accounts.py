"""Sign-in CPU per request (the KDF dominates); the email function's throughput on moto's SES.

Sign-in: the password step through the real accounts handler, at the template's scrypt
parameters, with SQS stubbed at the client; rate limits lifted so every request hashes.
Email: the real email handler on batches of 10 requests, PostgreSQL for the challenges
and the dedup record, moto's SES server over HTTP for the sends.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import psycopg2
from sluice.accounts.accounts import Accounts
from sluice.accounts.email_queue import EmailQueue, EmailRequest
from sluice.accounts.passwords import ScryptParameters
from sluice.core.clock import SystemClock
from sluice.core.config import AccountsSettings, DatabaseSettings, EmailSettings
from sluice.core.db import Database
from sluice.email.mailer import Mailer

import functions.accounts.app as accounts_app
import functions.email.app as email_app
from benchmarks.environment import BenchEnvironment
from toolkit.lambda_events import http_event, sqs_event

PASSWORD = "tidal-Orbit-93-quince"  # noqa: S105 - a benchmark's password
SENDER = "no-reply@sluice.bench"


class StubSqs:
    def send_message(self, QueueUrl: str, MessageBody: str) -> dict:
        return {"MessageId": "stub"}


class Context:
    function_name = "bench"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"


def _sign_in_cpu(
    env: BenchEnvironment, rounds: int
) -> tuple[ScryptParameters, float, float, float]:
    settings = AccountsSettings.from_env(
        {
            "EMAIL_QUEUE_URL": "stub",
            "DATABASE_URL": env.database_url,
            "EMAIL_SENDS_PER_MINUTE": "1000000",
            "EMAIL_SENDS_PER_HOUR": "1000000",
            "SIGN_INS_FREE_PER_HOUR": "1000000",
            "PASSWORDS_PER_SOURCE_PER_MINUTE": "1000000",
            "PASSWORDS_PER_SOURCE_PER_HOUR": "1000000",
        }
    )
    service = Accounts(
        settings, Database(settings.database), EmailQueue(StubSqs(), "stub"), SystemClock()
    )
    accounts_app.accounts = lambda: service
    with psycopg2.connect(env.database_url) as conn, conn.cursor() as cur:
        now = datetime.now(UTC)
        cur.execute(
            "INSERT INTO accounts VALUES (%s, 'bench@example.com', %s, %s, %s)",
            (uuid.uuid4(), service.hasher.hash(PASSWORD), now, now),
        )
    conn.close()

    def cpu(email: str) -> float:
        event = http_event("/api/accounts/sign-in", {"email": email, "password": PASSWORD})
        figures = []
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            accounts_app.handler(event, Context())  # warm
            for _ in range(rounds):
                start = time.process_time()
                response = accounts_app.handler(event, Context())
                figures.append(time.process_time() - start)
                assert response["statusCode"] == 202, response
        return statistics.median(figures)

    parameters = service.hasher.parameters
    start = time.process_time()
    for _ in range(rounds):
        hashlib.scrypt(
            b"x",
            salt=b"s" * 16,
            n=parameters.n,
            r=parameters.r,
            p=parameters.p,
            maxmem=parameters.memory + 16 * 2**20,
        )
    kdf = (time.process_time() - start) / rounds
    return parameters, kdf, cpu("bench@example.com"), cpu("nobody@example.com")


def _email_throughput(env: BenchEnvironment, count: int) -> tuple[float, float]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server._server.server_port}"
        ses = boto3.client("sesv2", endpoint_url=url, region_name="us-east-1")
        ses.create_email_identity(EmailIdentity=SENDER)
        settings = EmailSettings(database=DatabaseSettings(url=env.database_url), sender=SENDER)
        mailer = Mailer(settings, Database(settings.database), ses, SystemClock())
        email_app.mailer = lambda: mailer
        now = datetime.now(UTC)
        requests = []
        with psycopg2.connect(env.database_url) as conn, conn.cursor() as cur:
            for i in range(count):
                challenge_id = uuid.uuid4()
                cur.execute(
                    "INSERT INTO email_challenges"
                    " (challenge_id, kind, email, created_at, expires_at)"
                    " VALUES (%s, 'register', %s, %s, %s)",
                    (challenge_id, f"new{i}@example.com", now, now + timedelta(minutes=10)),
                )
                requests.append(EmailRequest("register", challenge_id).encode())
        conn.close()
        batches = [requests[i : i + 10] for i in range(0, count, 10)]
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            start, cpu_start = time.perf_counter(), time.process_time()
            for batch in batches:
                assert email_app.handler(sqs_event(batch), Context()) == {"batchItemFailures": []}
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            # The same requests again: every one a duplicate, nothing sent.
            start = time.perf_counter()
            for batch in batches:
                email_app.handler(sqs_event(batch), Context())
            duplicates = time.perf_counter() - start
        return count / wall, cpu / count, count / duplicates
    finally:
        server.stop()


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    parameters, kdf, known, unknown = _sign_in_cpu(env, 3 if quick else 9)
    print("5. Accounts: sign-in CPU per request (password step, warm, SQS stubbed)")
    print(
        f"   scrypt n=2^{parameters.n.bit_length() - 1}, r={parameters.r}, p={parameters.p}"
        f" ({parameters.memory // 2**20} MiB): {kdf * 1e3:6.1f} ms per hash"
    )
    print(f"   sign-in, known address:   {known * 1e3:6.1f} ms CPU per request")
    print(f"   sign-in, unknown address: {unknown * 1e3:6.1f} ms CPU per request (same KDF)")
    print()
    sent, cpu, duplicates = _email_throughput(env, 50 if quick else 300)
    print("6. Email function against moto's SES server (batches of 10, one process)")
    print(f"   sent:       {sent:6.0f} emails/s ({cpu * 1e3:.1f} ms CPU per email, function side)")
    print(f"   duplicates: {duplicates:6.0f} requests/s (redelivered, nothing sent)")
