"""What the operator commands share: a mistake is one line on stderr and an exit code.

tools.admin's convention, for `make migrate`, `make aggregate`,
`make rebuild-aggregates`, `make maintain`, `make archive-read` and `make redrive`:
an operator's ordinary mistake (no or an unreachable database, an unknown app or
queue, no AWS settings) is a sentence, and its own exit code (EXIT_CODES) lets a
script tell them apart; a traceback means a bug. The codes 1-10 mean what they mean
for tools.admin; the AWS ones start after admin's own (11, 12).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import psycopg2
from psycopg2 import errors
from sluice.core.config import command_line_database_url
from sluice.core.db import Connection
from sluice.core.errors import AppNotFound, ConfigurationError, DatabaseUnavailable


class CommandError(Exception):
    """Its message is the line printed, exit_code the exit code."""

    exit_code = 1


class AppUnknown(CommandError):
    exit_code = 1


class NoDatabaseUrl(CommandError):
    exit_code = 7


class DatabaseUnreachable(CommandError):
    exit_code = 8


class NotMigrated(CommandError):
    exit_code = 9


class NotPermitted(CommandError):
    exit_code = 10


class AwsNotConfigured(CommandError):
    exit_code = 13


class AwsUnreachable(CommandError):
    exit_code = 14


class AwsResourceUnknown(CommandError):
    exit_code = 15


class NothingArchived(CommandError):
    exit_code = 16


class HistoryExpired(CommandError):
    exit_code = 17


class ZonesLacking(CommandError):
    exit_code = 18


EXIT_CODES = {
    0: "done",
    AppUnknown.exit_code: "no app with that id",
    2: "bad arguments",
    NoDatabaseUrl.exit_code: "DATABASE_URL is not set",
    DatabaseUnreachable.exit_code: "the database cannot be reached or refused the sign-in",
    NotMigrated.exit_code: "the database has no Sluice tables (run make migrate)",
    NotPermitted.exit_code: "DATABASE_URL's user may not do this",
    AwsNotConfigured.exit_code: "no AWS settings (credentials, region, bucket or queue)",
    AwsUnreachable.exit_code: "AWS (or make dev's stand-in) cannot be reached or refused",
    AwsResourceUnknown.exit_code: "no such bucket or queue",
    NothingArchived.exit_code: "nothing is archived for that app and day",
    HistoryExpired.exit_code: "a rebuild would recount days that have expired (--force)",
    ZonesLacking.exit_code: "a chosen zone lacks an endpoint service or the instance class",
}


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def database_url() -> str:
    try:
        return command_line_database_url()
    except ConfigurationError as exc:
        raise NoDatabaseUrl(f"{exc} (or start make dev)") from None


def connect() -> Connection:
    url = database_url()
    try:
        # A bounded wait: an unreachable host otherwise hangs for the OS's TCP timeout.
        return psycopg2.connect(url, connect_timeout=10)
    except psycopg2.Error as exc:
        raise DatabaseUnreachable(f"cannot connect to DATABASE_URL: {first_line(exc)}") from None


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """The database's failures as sentences."""
    try:
        yield
    except AppNotFound as exc:
        raise AppUnknown(exc.message) from None
    except DatabaseUnavailable as exc:
        cause = exc.__cause__ or exc
        raise DatabaseUnreachable(f"cannot connect to DATABASE_URL: {first_line(cause)}") from None
    except (errors.UndefinedTable, errors.UndefinedColumn):
        raise NotMigrated(
            "the database has no Sluice tables (or old ones): run make migrate against it"
        ) from None
    except errors.InsufficientPrivilege as exc:
        raise NotPermitted(f"DATABASE_URL's user may not do this: {first_line(exc)}") from None
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        raise DatabaseUnreachable(f"lost the database: {first_line(exc)}") from None


_UNKNOWN = {
    "NoSuchBucket",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "ValidationError",  # CloudFormation: no such stack
}


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """botocore's failures as sentences; `what` names the resource (a bucket, a queue)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    hint = "set the AWS variables, or start make dev for its local stand-ins"
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError, NoRegionError) as exc:
        raise AwsNotConfigured(f"{first_line(exc)}: {hint}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = error.get("Message") or first_line(exc)
        if error.get("Code") in _UNKNOWN:
            raise AwsResourceUnknown(f"{what}: {message}") from None
        raise AwsUnreachable(f"{what}: {message}") from None
    except BotoCoreError as exc:
        raise AwsUnreachable(f"{what}: {first_line(exc)}") from None


def run(prog: str, command: Callable[[], int | None]) -> int:
    """Runs `command`; a CommandError becomes its line on stderr and its exit code."""
    try:
        return command() or 0
    except CommandError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
