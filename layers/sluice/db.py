"""The one PostgreSQL connection a warm Lambda container keeps.

Nothing here pins an RDS Proxy connection: no SET, no server-side prepared
statements, no temporary tables, no advisory locks held across transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg2
import psycopg2.extensions

from sluice.config import DatabaseSettings
from sluice.errors import DatabaseUnavailable

T = TypeVar("T")
Connection = psycopg2.extensions.connection

# Errors that say the server or the link to it is gone, as opposed to a statement
# the server refused. Only these make a batch "database down".
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def _connect_kwargs(settings: DatabaseSettings) -> dict:
    if settings.url:
        return {"dsn": settings.url, "connect_timeout": settings.connect_timeout}
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(settings.secret_arn, transform="json", max_age=300)
    return {
        "host": settings.host,
        "port": settings.port,
        "dbname": settings.name,
        "user": secret["username"],
        "password": secret["password"],
        "sslmode": "require",
        "connect_timeout": settings.connect_timeout,
    }


class Database:
    """Opens its connection on first use and again after it breaks."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._conn: Connection | None = None

    def connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg2.connect(**_connect_kwargs(self.settings))
            except CONNECTION_ERRORS as exc:
                raise DatabaseUnavailable("the database cannot be reached") from exc
        return self._conn

    def run(self, work: Callable[[Connection], T]) -> T:
        """Runs `work` in one transaction: committed if it returns, rolled back if it raises.

        A broken connection is dropped (the next call reconnects) and reported as
        DatabaseUnavailable; any other database error propagates unchanged.
        """
        conn = self.connection()
        try:
            with conn:
                return work(conn)
        except CONNECTION_ERRORS as exc:
            self.close()
            raise DatabaseUnavailable("the database cannot be reached") from exc

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def connect_from_env() -> Connection:
    """For command-line tools (make migrate, sluice.admin): DATABASE_URL, or exit with a hint."""
    import os
    import sys

    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set: point it at the PostgreSQL to use")
    return psycopg2.connect(url)
