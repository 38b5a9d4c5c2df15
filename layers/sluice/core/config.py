"""Each function's configuration: read from the environment once, validated, at cold start.

The one place Sluice reads its settings from the environment: the functions'
settings below, and the few the command-line tools and the migrate function read.

Plain dataclasses rather than pydantic models: importing pydantic costs the
ingest function ~90 ms of cold start (measured by `make bench`), more than its
whole budget over the bare libraries it stands on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sluice.core.errors import ConfigurationError


class _Reader:
    """Reads typed values from an environment and collects every problem before failing."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str:
        value = self.environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            self.problems.append(f"{name} is required")
            return ""
        return default

    def optional(self, name: str) -> str | None:
        return self.environ.get(name, "").strip() or None

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {raw}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in allowed:
            self.problems.append(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.number(name, default, minimum=minimum)
        if value != int(value):
            self.problems.append(f"{name} must be a whole number")
        return int(value)

    def check(self) -> None:
        if self.problems:
            raise ConfigurationError("; ".join(self.problems))


# Modes that encrypt; libpq's weaker ones (disable, allow, prefer) are refused.
SSL_MODES = ("require", "verify-ca", "verify-full")


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Locally a DATABASE_URL; in AWS the RDS Proxy endpoint plus the RDS-managed secret."""

    url: str | None = None
    # The function's own database role (migrations create them); in AWS its secret
    # holds the same name and the password.
    user: str | None = None
    secret_arn: str | None = None
    host: str | None = None
    port: int = 5432
    name: str = "sluice"
    connect_timeout: int = 3
    # verify-full checks RDS Proxy's certificate and host name; only a connection
    # whose server's CA is not in certifi (migrations, straight to the instance)
    # may set less.
    sslmode: str = "verify-full"

    @classmethod
    def read(cls, env: _Reader) -> DatabaseSettings:
        settings = cls(
            url=env.optional("DATABASE_URL"),
            user=env.optional("DB_USER"),
            secret_arn=env.optional("DB_SECRET_ARN"),
            host=env.optional("DB_HOST"),
            port=env.integer("DB_PORT", 5432, minimum=1),
            name=env.text("DB_NAME", "sluice"),
            connect_timeout=env.integer("DB_CONNECT_TIMEOUT_SECONDS", 3, minimum=1),
            sslmode=env.choice("DB_SSLMODE", "verify-full", SSL_MODES),
        )
        if not settings.url and not (settings.secret_arn and settings.host):
            env.problems.append("set DATABASE_URL, or DB_SECRET_ARN and DB_HOST")
        return settings


@dataclass(frozen=True, slots=True)
class IngestCacheSettings:
    """How long ingest keeps what it looked up (sluice.intake.catalog).

    Read by ingest, which caches, and by manage, whose answers to a change say when
    ingest follows it: the same variables, so the two cannot disagree.
    """

    rules_ttl: float = 60.0  # an app: its rules, policies and require_key
    keys_ttl: float = 60.0  # which app a key belongs to
    unknown_ttl: float = 5.0  # an app id or key that matched nothing
    # How long cached apps, keys and rules keep being served while Postgres is down.
    stale_max_age: float = 600.0

    @classmethod
    def read(cls, env: _Reader) -> IngestCacheSettings:
        return cls(
            rules_ttl=env.number("RULES_CACHE_TTL_SECONDS", 60.0, minimum=0),
            keys_ttl=env.number("KEYS_CACHE_TTL_SECONDS", 60.0, minimum=0),
            unknown_ttl=env.number("UNKNOWN_KEY_CACHE_TTL_SECONDS", 5.0, minimum=0),
            stale_max_age=env.number("STALE_CACHE_MAX_AGE_SECONDS", 600.0, minimum=0),
        )


@dataclass(frozen=True, slots=True)
class IngestSettings:
    events_queue_url: str
    database: DatabaseSettings
    max_event_bytes: int = 32 * 1024
    max_batch_events: int = 500
    max_batch_bytes: int = 1024 * 1024
    cache: IngestCacheSettings = IngestCacheSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            events_queue_url=env.text("EVENTS_QUEUE_URL"),
            database=DatabaseSettings.read(env),
            max_event_bytes=env.integer("MAX_EVENT_BYTES", 32 * 1024, minimum=256),
            max_batch_events=env.integer("MAX_BATCH_EVENTS", 500, minimum=1),
            max_batch_bytes=env.integer("MAX_BATCH_BYTES", 1024 * 1024, minimum=1024),
            cache=IngestCacheSettings.read(env),
        )
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class StoreSettings:
    database: DatabaseSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(database=DatabaseSettings.read(env))
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class AccountsSettings:
    email_queue_url: str
    database: DatabaseSettings
    # scrypt's cost: 2^17 x 8 x 128 bytes = 128 MiB per hash (OWASP's recommendation).
    # Lower only in tests; a stored hash keeps the parameters it was made with.
    scrypt_n: int = 2**17
    scrypt_r: int = 8
    scrypt_p: int = 1
    max_body_bytes: int = 4096
    # Mails per address and kind (register, reset): one a minute and five an hour each.
    sends_per_minute: int = 1
    sends_per_hour: int = 5
    # Sign-ins per address (sluice.accounts.limits.Backoff): five an hour free, then each waits
    # 1, 2, 4 ... s after the one before, never more than the cap.
    sign_ins_free_per_hour: int = 5
    sign_in_backoff_cap_seconds: int = 60
    # Sign-ins per source (the client's IP address), over every address: a wall.
    sign_ins_per_source_per_minute: int = 10
    sign_ins_per_source_per_hour: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccountsSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            email_queue_url=env.text("EMAIL_QUEUE_URL"),
            database=DatabaseSettings.read(env),
            scrypt_n=env.integer("PASSWORD_SCRYPT_N", 2**17, minimum=2**10),
            scrypt_r=env.integer("PASSWORD_SCRYPT_R", 8, minimum=1),
            scrypt_p=env.integer("PASSWORD_SCRYPT_P", 1, minimum=1),
            max_body_bytes=env.integer("MAX_ACCOUNTS_BODY_BYTES", 4096, minimum=256),
            sends_per_minute=env.integer("EMAIL_SENDS_PER_MINUTE", 1, minimum=1),
            sends_per_hour=env.integer("EMAIL_SENDS_PER_HOUR", 5, minimum=1),
            sign_ins_free_per_hour=env.integer("SIGN_INS_FREE_PER_HOUR", 5, minimum=1),
            sign_in_backoff_cap_seconds=env.integer("SIGN_IN_BACKOFF_CAP_SECONDS", 60, minimum=1),
            sign_ins_per_source_per_minute=env.integer(
                "SIGN_INS_PER_SOURCE_PER_MINUTE", 10, minimum=1
            ),
            sign_ins_per_source_per_hour=env.integer("SIGN_INS_PER_SOURCE_PER_HOUR", 60, minimum=1),
        )
        if settings.scrypt_n & (settings.scrypt_n - 1):
            env.problems.append("PASSWORD_SCRYPT_N must be a power of two")
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class EmailSettings:
    database: DatabaseSettings
    sender: str
    configuration_set: str | None = None
    product_name: str = "Sluice"
    # Prints each code and token to the function's log, for `make dev` only:
    # local-env.json sets it, template.yaml never does (tests/infra checks).
    local_echo: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmailSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            sender=env.text("EMAIL_SENDER_ADDRESS"),
            configuration_set=env.optional("EMAIL_CONFIGURATION_SET"),
            product_name=env.text("PRODUCT_NAME", "Sluice"),
            local_echo=env.choice("LOCAL_MAIL_ECHO", "off", ("on", "off")) == "on",
        )
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class AggregateSettings:
    database: DatabaseSettings
    # Events read per transaction: bounds each statement's work and how long the position
    # row stays locked (about 0.2 s at 20,000 on two cores; `make bench`).
    chunk_size: int = 20_000
    # Time left for the last chunk and the answer once a run stops starting new chunks.
    stop_before_timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AggregateSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            chunk_size=env.integer("AGGREGATE_CHUNK_SIZE", 20_000, minimum=1),
            stop_before_timeout=env.number(
                "AGGREGATE_STOP_BEFORE_TIMEOUT_SECONDS", 10.0, minimum=1
            ),
        )
        if settings.chunk_size > 100_000:
            env.problems.append("AGGREGATE_CHUNK_SIZE must be at most 100000")
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class ManageSettings:
    database: DatabaseSettings
    # A rule is the biggest thing sent here; 64 KiB holds any reasonable JSON Schema.
    max_body_bytes: int = 64 * 1024
    # Ingest's: each change's answer says when ingest follows it.
    ingest_cache: IngestCacheSettings = IngestCacheSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ManageSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            max_body_bytes=env.integer("MAX_MANAGE_BODY_BYTES", 64 * 1024, minimum=1024),
            ingest_cache=IngestCacheSettings.read(env),
        )
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class MigrateSettings:
    """The migrate function: its database, where the .sql files are, whose passwords to set."""

    database: DatabaseSettings
    migrations_dir: Path | None  # None: migrations/ at the repository root
    role_secret_arns: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MigrateSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            migrations_dir=migrations_directory(env.environ),
            role_secret_arns=tuple(
                arn for arn in env.text("DB_ROLE_SECRETS", "").split(",") if arn.strip()
            ),
        )
        env.check()
        return settings


def migrations_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """MIGRATIONS_DIR, where the migrations were packaged away from the repository."""
    configured = _Reader(os.environ if environ is None else environ).optional("MIGRATIONS_DIR")
    return Path(configured) if configured else None


def command_line_database_url(environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL for the command-line tools (make migrate, tools.admin, make aggregate)."""
    url = _Reader(os.environ if environ is None else environ).optional("DATABASE_URL")
    if not url:
        raise ConfigurationError("DATABASE_URL is not set: point it at the PostgreSQL to use")
    return url


def command_line_archive_bucket(environ: Mapping[str, str] | None = None) -> str:
    """ARCHIVE_BUCKET for the command-line tools (make maintain, make archive-read)."""
    bucket = _Reader(os.environ if environ is None else environ).optional("ARCHIVE_BUCKET")
    if not bucket:
        raise ConfigurationError("ARCHIVE_BUCKET is not set: name the archive's bucket")
    return bucket


@dataclass(frozen=True, slots=True)
class MaintainSettings:
    database: DatabaseSettings
    # Where expired events are archived (sluice.retention.archive).
    archive_bucket: str
    # Day partitions made ahead of today: days of runs may fail before any event
    # lands in the default partition.
    days_ahead: int = 7
    # How long a client's messageId is remembered (README, "Keeping events").
    dedup_window_hours: int = 72
    chunk_size: int = 10_000
    # Time left for the last step and the answer once a run stops starting new ones.
    stop_before_timeout: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MaintainSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            archive_bucket=env.text("ARCHIVE_BUCKET"),
            days_ahead=env.integer("PARTITION_DAYS_AHEAD", 7, minimum=1),
            dedup_window_hours=env.integer("DEDUP_WINDOW_HOURS", 72, minimum=1),
            chunk_size=env.integer("MAINTAIN_CHUNK_SIZE", 10_000, minimum=1),
            stop_before_timeout=env.number("MAINTAIN_STOP_BEFORE_TIMEOUT_SECONDS", 60.0, minimum=1),
        )
        env.check()
        return settings
