"""The one PostgreSQL connection a warm Lambda container keeps.

Nothing here pins an RDS Proxy connection: no SET, no server-side prepared
statements, no temporary tables, no advisory locks held across transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2.extensions import connection as Connection

from sluice.core.config import AwsSettings, DatabaseSettings
from sluice.core.errors import ConfigurationError, DatabaseUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

T = TypeVar("T")
# uuid columns in and out as uuid.UUID (accounts, challenges, sessions); process-wide.
psycopg2.extras.register_uuid()

# Errors that say the server or the link to it is gone, as opposed to a statement
# the server refused. Only these make a batch "database down".
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
# A failure faster than this cost no wait: a refused connection, a kept connection that
# died while the container slept (found at its first statement), Secrets Manager saying
# no. One that took longer was waited on (RDS Proxy's borrow timeout, an endpoint that
# stopped answering): trying again at once would wait as long again.
INSTANT_FAILURE_SECONDS = 0.5


def _connect_kwargs(
    settings: DatabaseSettings,
    *,
    fresh_secret: bool = False,
    secrets: SecretsProvider | None = None,
) -> dict[str, Any]:
    if settings.url:
        kwargs: dict[str, Any] = {"dsn": settings.url, "connect_timeout": settings.connect_timeout}
        if settings.user:
            kwargs["user"] = settings.user  # overrides the URL's user
        return kwargs
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    from sluice.core import aws_clients

    assert settings.secret_arn, "DatabaseSettings holds DATABASE_URL or DB_SECRET_ARN"
    provider = secrets or aws_clients.secrets_provider(AwsSettings())
    try:
        # transform="json": the secret's JSON object (Powertools types it as any transform's).
        secret = cast(
            "dict[str, Any]",
            provider.get(
                settings.secret_arn, transform="json", max_age=300, force_fetch=fresh_secret
            ),
        )
    except GetParameterError as exc:
        # Secrets Manager unreachable or refusing is, to a caller, the database
        # being unreachable: ingest serves its stale cache, store returns the batch.
        raise DatabaseUnavailable("the database credentials cannot be read") from exc
    if settings.user and settings.user != secret["username"]:
        raise ConfigurationError(
            f"DB_USER is {settings.user!r} but the secret is for {secret['username']!r}"
        )
    kwargs = {
        "host": settings.host,
        "port": settings.port,
        "dbname": settings.name,
        "user": secret["username"],
        "password": secret["password"],
        "sslmode": settings.sslmode,
        "connect_timeout": settings.connect_timeout,
    }
    if settings.sslmode.startswith("verify"):
        import certifi

        # RDS Proxy's certificate comes from ACM and chains to Amazon's roots,
        # which Mozilla's bundle holds.
        kwargs["sslrootcert"] = certifi.where()
    return kwargs


def _is_broken(exc: psycopg2.Error, conn: Connection) -> bool:
    # A lost server is not always an OperationalError: when libpq has not yet
    # marked the connection bad, psycopg2 reports "server closed the connection
    # unexpectedly" as a bare DatabaseError. Whatever the server itself refuses
    # carries a SQLSTATE and a subclass; a bare DatabaseError without one never
    # came from the server.
    if isinstance(exc, CONNECTION_ERRORS) or conn.closed:
        return True
    return type(exc) is psycopg2.DatabaseError and exc.pgcode is None


class Database:
    """Opens its connection on first use and again after it breaks.

    A call that waited and still failed (a connect timeout, Secrets Manager timing
    out, a statement that waited for the proxy and lost its connection) holds the
    database unavailable for `settings.unavailable_hold` seconds: calls meanwhile fail
    at once, so one invocation waits once, whatever number of lookups it makes
    (tests/infra/test_deadlines.py counts on it). A failure that cost no wait (a
    refused connection) holds nothing: the next call tries again.
    """

    def __init__(
        self,
        settings: DatabaseSettings,
        aws: AwsSettings | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._aws = aws or AwsSettings()
        self._secrets: SecretsProvider | None = None
        self._monotonic = monotonic
        self._conn: Connection | None = None
        self._refetch_secret = False
        self._held_until = float("-inf")

    def connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            self._conn = None
            if self._monotonic() < self._held_until:
                raise DatabaseUnavailable("the database could not be reached moments ago")
            started = self._monotonic()
            try:
                self._conn = psycopg2.connect(**self._connect_kwargs())
            except DatabaseUnavailable:  # the secret could not be read
                self._failed(started)
                raise
            except CONNECTION_ERRORS as exc:
                # Perhaps the password was rotated: read the secret again next time.
                self._refetch_secret = True
                self._failed(started)
                raise DatabaseUnavailable("the database cannot be reached") from exc
            self._refetch_secret = False
        return self._conn

    def _connect_kwargs(self) -> dict[str, Any]:
        if self.settings.secret_arn and self._secrets is None:
            from sluice.core import aws_clients

            # Built on the first connection: locally (DATABASE_URL) there is no secret.
            self._secrets = aws_clients.secrets_provider(self._aws)
        return _connect_kwargs(
            self.settings, fresh_secret=self._refetch_secret, secrets=self._secrets
        )

    def _failed(self, started: float) -> None:
        now = self._monotonic()
        if now - started >= INSTANT_FAILURE_SECONDS:
            self._held_until = now + self.settings.unavailable_hold

    def run(self, work: Callable[[Connection], T]) -> T:
        """Runs `work` in one transaction: committed if it returns, rolled back if it raises.

        A kept connection can die while the container sleeps (RDS Proxy drops
        clients idle for IdleClientTimeout; the database may have restarted). When
        a reused connection turns out dead before the transaction committed,
        nothing was written: reconnect and run `work` once more. A connection that
        breaks otherwise is dropped (the next call reconnects) and reported as
        DatabaseUnavailable; any other database error propagates unchanged.
        """
        reused = self._conn is not None and not self._conn.closed
        conn = self.connection()
        started = self._monotonic()
        try:
            return self._transaction(conn, work)
        except _DiedBeforeCommit as died:
            self.close()
            if not reused or self._monotonic() - started >= INSTANT_FAILURE_SECONDS:
                self._failed(started)
                raise DatabaseUnavailable("the database cannot be reached") from died.cause
        started = self._monotonic()
        try:
            return self._transaction(self.connection(), work)
        except _DiedBeforeCommit as died:
            self.close()
            self._failed(started)
            raise DatabaseUnavailable("the database cannot be reached") from died.cause

    def _transaction(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        try:
            result = work(conn)
        except psycopg2.Error as exc:
            if _is_broken(exc, conn):
                raise _DiedBeforeCommit(exc) from exc
            _rollback(conn)
            raise
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.commit()
        except psycopg2.Error as exc:
            # The commit may or may not have reached the server: not safe to repeat here.
            if _is_broken(exc, conn):
                self.close()
                raise DatabaseUnavailable("the database connection broke at commit") from exc
            raise
        return result

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class _DiedBeforeCommit(Exception):
    def __init__(self, cause: psycopg2.Error) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _rollback(conn: Connection) -> None:
    if not conn.closed:
        try:
            conn.rollback()
        except psycopg2.Error:
            pass  # the error that got us here is the one worth reporting
