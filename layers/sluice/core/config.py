"""Each function's configuration: read from the environment once, validated, at cold start.

The one place Sluice reads its settings from the environment: the functions'
settings below, and the few the command-line tools and the migrate function read.
Each setting is specified once (variable, default, bounds) and everything else is
built from that spec: the classes' defaults, their reading, and the check that
template.yaml gives the functions only values the spec allows.

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

    def number(
        self, name: str, default: float, *, minimum: float, maximum: float | None = None
    ) -> float:
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
        if maximum is not None and value > maximum:
            self.problems.append(f"{name} must be at most {maximum}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in allowed:
            self.problems.append(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.number(name, default, minimum=minimum)
        if value != int(value):
            self.problems.append(f"{name} must be a whole number")
        # After the whole-number check: the order the messages have always come in.
        if maximum is not None and value > maximum:
            self.problems.append(f"{name} must be at most {maximum}")
        return int(value)

    def check(self) -> None:
        if self.problems:
            raise ConfigurationError("; ".join(self.problems))


# --- the settings: one spec each -------------------------------------------------
# Each setting's variable, default and bounds are written here once; the settings
# classes below take their defaults and their reading from these, and
# tests/infra/test_settings.py checks every value template.yaml gives a function
# against them (a parameter's Default, MinValue and MaxValue included).


# Plain classes with __slots__, not dataclasses: ingest imports this module at cold
# start, and six more dataclasses cost it ~3.5 ms (python -X importtime).
class Required:
    """A string the function cannot run without."""

    __slots__ = ("variable",)
    default = None

    def __init__(self, variable: str) -> None:
        self.variable = variable

    def read(self, env: _Reader) -> str:
        return env.text(self.variable)


class Text:
    __slots__ = ("default", "variable")

    def __init__(self, variable: str, default: str) -> None:
        self.variable, self.default = variable, default

    def read(self, env: _Reader) -> str:
        return env.text(self.variable, self.default)


class OptionalText:
    """A string that may be absent (None)."""

    __slots__ = ("variable",)
    default = None

    def __init__(self, variable: str) -> None:
        self.variable = variable

    def read(self, env: _Reader) -> str | None:
        return env.optional(self.variable)


class Choice:
    __slots__ = ("choices", "default", "variable")

    def __init__(self, variable: str, default: str, choices: tuple[str, ...]) -> None:
        self.variable, self.default, self.choices = variable, default, choices

    def read(self, env: _Reader) -> str:
        return env.choice(self.variable, self.default, self.choices)


class Integer:
    __slots__ = ("default", "maximum", "minimum", "variable")

    def __init__(
        self, variable: str, default: int, *, minimum: int, maximum: int | None = None
    ) -> None:
        self.variable = variable
        self.default = default
        self.minimum = minimum
        self.maximum = maximum

    def read(self, env: _Reader) -> int:
        return env.integer(self.variable, self.default, minimum=self.minimum, maximum=self.maximum)


class Number:
    __slots__ = ("default", "maximum", "minimum", "variable")

    def __init__(
        self, variable: str, default: float, *, minimum: float, maximum: float | None = None
    ) -> None:
        self.variable = variable
        self.default = default
        self.minimum = minimum
        self.maximum = maximum

    def read(self, env: _Reader) -> float:
        return env.number(self.variable, self.default, minimum=self.minimum, maximum=self.maximum)


Setting = Required | Text | OptionalText | Choice | Integer | Number

# Modes that encrypt; libpq's weaker ones (disable, allow, prefer) are refused.
SSL_MODES = ("require", "verify-ca", "verify-full")

# The database, for every function.
DATABASE_URL = OptionalText("DATABASE_URL")  # locally; in AWS the secret and the host below
DB_USER = OptionalText("DB_USER")
DB_SECRET_ARN = OptionalText("DB_SECRET_ARN")
DB_HOST = OptionalText("DB_HOST")
DB_PORT = Integer("DB_PORT", 5432, minimum=1)
DB_NAME = Text("DB_NAME", "sluice")
# libpq's, per address the host name resolves to; it takes nothing under 2 s.
DB_CONNECT_TIMEOUT_SECONDS = Integer("DB_CONNECT_TIMEOUT_SECONDS", 2, minimum=2)
# After a call that waited and still failed (a hanging proxy, Secrets Manager timing out),
# calls fail at once for this long instead of waiting again: one wait per invocation
# while it is at least the function's timeout (tests/infra/test_deadlines.py).
DB_UNAVAILABLE_HOLD_SECONDS = Number("DB_UNAVAILABLE_HOLD_SECONDS", 30.0, minimum=0)
# verify-full checks RDS Proxy's certificate and host name; only a connection whose
# server's CA is not in certifi (migrations, straight to the instance) may set less.
DB_SSLMODE = Choice("DB_SSLMODE", "verify-full", SSL_MODES)

# Every AWS client a function makes (sluice.core.aws_clients); botocore's own defaults
# are 60 s to connect and 60 s to read. The defaults fit the 10 s HTTP functions with
# the database counted (docs/operating-in-aws.md, "Deadlines"): no retry of botocore's
# own, the client (an SDK, SQS's redelivery) retries instead.
AWS_CONNECT_TIMEOUT_SECONDS = Number("AWS_CONNECT_TIMEOUT_SECONDS", 0.5, minimum=0.1)
AWS_READ_TIMEOUT_SECONDS = Number("AWS_READ_TIMEOUT_SECONDS", 1.0, minimum=0.1)
AWS_MAX_ATTEMPTS = Integer("AWS_MAX_ATTEMPTS", 1, minimum=1, maximum=10)

# Ingest's caches (sluice.intake.catalog), read by ingest and by manage.
RULES_CACHE_TTL_SECONDS = Number("RULES_CACHE_TTL_SECONDS", 60.0, minimum=0)
KEYS_CACHE_TTL_SECONDS = Number("KEYS_CACHE_TTL_SECONDS", 60.0, minimum=0)
UNKNOWN_KEY_CACHE_TTL_SECONDS = Number("UNKNOWN_KEY_CACHE_TTL_SECONDS", 5.0, minimum=0)
STALE_CACHE_MAX_AGE_SECONDS = Number("STALE_CACHE_MAX_AGE_SECONDS", 600.0, minimum=0)

# Ingest.
EVENTS_QUEUE_URL = Required("EVENTS_QUEUE_URL")
MAX_EVENT_BYTES = Integer("MAX_EVENT_BYTES", 32 * 1024, minimum=256)
MAX_BATCH_EVENTS = Integer("MAX_BATCH_EVENTS", 500, minimum=1)
MAX_BATCH_BYTES = Integer("MAX_BATCH_BYTES", 1024 * 1024, minimum=1024)

# Accounts.
EMAIL_QUEUE_URL = Required("EMAIL_QUEUE_URL")
# scrypt's cost: 2^17 x 8 x 128 bytes = 128 MiB per hash (OWASP's recommendation).
# Lower only in tests; a stored hash keeps the parameters it was made with. A power
# of two (AccountsSettings checks).
PASSWORD_SCRYPT_N = Integer("PASSWORD_SCRYPT_N", 2**17, minimum=2**10)
PASSWORD_SCRYPT_R = Integer("PASSWORD_SCRYPT_R", 8, minimum=1)
PASSWORD_SCRYPT_P = Integer("PASSWORD_SCRYPT_P", 1, minimum=1)
MAX_ACCOUNTS_BODY_BYTES = Integer("MAX_ACCOUNTS_BODY_BYTES", 4096, minimum=256)
# Mails per address and kind (register, reset): one a minute and five an hour each.
EMAIL_SENDS_PER_MINUTE = Integer("EMAIL_SENDS_PER_MINUTE", 1, minimum=1)
EMAIL_SENDS_PER_HOUR = Integer("EMAIL_SENDS_PER_HOUR", 5, minimum=1)
# Sign-ins per address (sluice.accounts.limits.Backoff): five an hour free, then each waits
# 1, 2, 4 ... s after the one before, never more than the cap.
SIGN_INS_FREE_PER_HOUR = Integer("SIGN_INS_FREE_PER_HOUR", 5, minimum=1)
SIGN_IN_BACKOFF_CAP_SECONDS = Integer("SIGN_IN_BACKOFF_CAP_SECONDS", 60, minimum=1)
# Passwords hashed per source (the client's IP address) over every address and route
# (register, sign-in, reset confirm), counted before the hash: a wall.
PASSWORDS_PER_SOURCE_PER_MINUTE = Integer("PASSWORDS_PER_SOURCE_PER_MINUTE", 10, minimum=1)
PASSWORDS_PER_SOURCE_PER_HOUR = Integer("PASSWORDS_PER_SOURCE_PER_HOUR", 60, minimum=1)
# The function's ReservedConcurrentExecutions (template.yaml sets both from one parameter):
# half of it may hash at once, the other half answers everything else, refusals included.
ACCOUNTS_RESERVED_CONCURRENCY = Integer("ACCOUNTS_RESERVED_CONCURRENCY", 10, minimum=2)

# Email.
EMAIL_SENDER_ADDRESS = Required("EMAIL_SENDER_ADDRESS")
EMAIL_CONFIGURATION_SET = OptionalText("EMAIL_CONFIGURATION_SET")
PRODUCT_NAME = Text("PRODUCT_NAME", "Sluice")
# Prints each code and token to the function's log, for `make dev` only:
# local-env.json sets it, template.yaml never does (tests/infra checks).
LOCAL_MAIL_ECHO = Choice("LOCAL_MAIL_ECHO", "off", ("on", "off"))

# Aggregate. Events read per transaction: bounds each statement's work and how long
# the position row stays locked (about 0.2 s at 20,000 on two cores; `make bench`).
AGGREGATE_CHUNK_SIZE = Integer("AGGREGATE_CHUNK_SIZE", 20_000, minimum=1, maximum=100_000)
# Time left for the last chunk and the answer once a run stops starting new chunks.
AGGREGATE_STOP_BEFORE_TIMEOUT_SECONDS = Number(
    "AGGREGATE_STOP_BEFORE_TIMEOUT_SECONDS", 10.0, minimum=1
)

# Manage. A rule is the biggest thing sent here; 64 KiB holds any reasonable JSON Schema.
MAX_MANAGE_BODY_BYTES = Integer("MAX_MANAGE_BODY_BYTES", 64 * 1024, minimum=1024)

# Migrate.
MIGRATIONS_DIR = OptionalText("MIGRATIONS_DIR")  # unset: migrations/ at the repository root
DB_ROLE_SECRETS = Text("DB_ROLE_SECRETS", "")  # comma-separated ARNs

# Maintain.
# Where expired events are archived (sluice.retention.archive).
ARCHIVE_BUCKET = Required("ARCHIVE_BUCKET")
# Day partitions made ahead of today: days of runs may fail before any event lands in
# the default partition.
PARTITION_DAYS_AHEAD = Integer("PARTITION_DAYS_AHEAD", 7, minimum=1)
# How long a client's messageId is remembered (docs/operating-in-aws.md, "Retention").
DEDUP_WINDOW_HOURS = Integer("DEDUP_WINDOW_HOURS", 72, minimum=1)
MAINTAIN_CHUNK_SIZE = Integer("MAINTAIN_CHUNK_SIZE", 10_000, minimum=1)
# Time left for the last step and the answer once a run stops starting new ones.
MAINTAIN_STOP_BEFORE_TIMEOUT_SECONDS = Number(
    "MAINTAIN_STOP_BEFORE_TIMEOUT_SECONDS", 60.0, minimum=1
)

# Every setting above, by variable: what the template test checks against.
SETTINGS: dict[str, Setting] = {
    setting.variable: setting
    for setting in list(globals().values())
    if isinstance(setting, (Required, Text, OptionalText, Choice, Integer, Number))
}


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Locally a DATABASE_URL; in AWS the RDS Proxy endpoint plus the RDS-managed secret."""

    url: str | None = None
    # The function's own database role (migrations create them); in AWS its secret
    # holds the same name and the password.
    user: str | None = None
    secret_arn: str | None = None
    host: str | None = None
    port: int = DB_PORT.default
    name: str = DB_NAME.default
    connect_timeout: int = DB_CONNECT_TIMEOUT_SECONDS.default
    sslmode: str = DB_SSLMODE.default
    unavailable_hold: float = DB_UNAVAILABLE_HOLD_SECONDS.default

    @classmethod
    def read(cls, env: _Reader) -> DatabaseSettings:
        settings = cls(
            url=DATABASE_URL.read(env),
            user=DB_USER.read(env),
            secret_arn=DB_SECRET_ARN.read(env),
            host=DB_HOST.read(env),
            port=DB_PORT.read(env),
            name=DB_NAME.read(env),
            connect_timeout=DB_CONNECT_TIMEOUT_SECONDS.read(env),
            sslmode=DB_SSLMODE.read(env),
            unavailable_hold=DB_UNAVAILABLE_HOLD_SECONDS.read(env),
        )
        if not settings.url and not (settings.secret_arn and settings.host):
            env.problems.append("set DATABASE_URL, or DB_SECRET_ARN and DB_HOST")
        return settings


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """The deadline of each AWS call a function makes: botocore's timeouts and attempts."""

    connect_timeout: float = AWS_CONNECT_TIMEOUT_SECONDS.default
    read_timeout: float = AWS_READ_TIMEOUT_SECONDS.default
    max_attempts: int = AWS_MAX_ATTEMPTS.default

    @classmethod
    def read(cls, env: _Reader) -> AwsSettings:
        return cls(
            connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS.read(env),
            read_timeout=AWS_READ_TIMEOUT_SECONDS.read(env),
            max_attempts=AWS_MAX_ATTEMPTS.read(env),
        )


@dataclass(frozen=True, slots=True)
class IngestCacheSettings:
    """How long ingest keeps what it looked up (sluice.intake.catalog).

    Read by ingest, which caches, and by manage, whose answers to a change say when
    ingest follows it: the same variables, so the two cannot disagree.
    """

    rules_ttl: float = RULES_CACHE_TTL_SECONDS.default  # an app: its rules, policies, require_key
    keys_ttl: float = KEYS_CACHE_TTL_SECONDS.default  # which app a key belongs to
    # An app id or key that matched nothing.
    unknown_ttl: float = UNKNOWN_KEY_CACHE_TTL_SECONDS.default
    # How long cached apps, keys and rules keep being served while Postgres is down.
    stale_max_age: float = STALE_CACHE_MAX_AGE_SECONDS.default

    @classmethod
    def read(cls, env: _Reader) -> IngestCacheSettings:
        return cls(
            rules_ttl=RULES_CACHE_TTL_SECONDS.read(env),
            keys_ttl=KEYS_CACHE_TTL_SECONDS.read(env),
            unknown_ttl=UNKNOWN_KEY_CACHE_TTL_SECONDS.read(env),
            stale_max_age=STALE_CACHE_MAX_AGE_SECONDS.read(env),
        )


@dataclass(frozen=True, slots=True)
class IngestSettings:
    events_queue_url: str
    database: DatabaseSettings
    max_event_bytes: int = MAX_EVENT_BYTES.default
    max_batch_events: int = MAX_BATCH_EVENTS.default
    max_batch_bytes: int = MAX_BATCH_BYTES.default
    cache: IngestCacheSettings = IngestCacheSettings()
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            events_queue_url=EVENTS_QUEUE_URL.read(env),
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            max_event_bytes=MAX_EVENT_BYTES.read(env),
            max_batch_events=MAX_BATCH_EVENTS.read(env),
            max_batch_bytes=MAX_BATCH_BYTES.read(env),
            cache=IngestCacheSettings.read(env),
        )
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class StoreSettings:
    database: DatabaseSettings
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(database=DatabaseSettings.read(env), aws=AwsSettings.read(env))
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class AccountsSettings:
    email_queue_url: str
    database: DatabaseSettings
    scrypt_n: int = PASSWORD_SCRYPT_N.default
    scrypt_r: int = PASSWORD_SCRYPT_R.default
    scrypt_p: int = PASSWORD_SCRYPT_P.default
    max_body_bytes: int = MAX_ACCOUNTS_BODY_BYTES.default
    sends_per_minute: int = EMAIL_SENDS_PER_MINUTE.default
    sends_per_hour: int = EMAIL_SENDS_PER_HOUR.default
    sign_ins_free_per_hour: int = SIGN_INS_FREE_PER_HOUR.default
    sign_in_backoff_cap_seconds: int = SIGN_IN_BACKOFF_CAP_SECONDS.default
    passwords_per_source_per_minute: int = PASSWORDS_PER_SOURCE_PER_MINUTE.default
    passwords_per_source_per_hour: int = PASSWORDS_PER_SOURCE_PER_HOUR.default
    reserved_concurrency: int = ACCOUNTS_RESERVED_CONCURRENCY.default
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccountsSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            email_queue_url=EMAIL_QUEUE_URL.read(env),
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            scrypt_n=PASSWORD_SCRYPT_N.read(env),
            scrypt_r=PASSWORD_SCRYPT_R.read(env),
            scrypt_p=PASSWORD_SCRYPT_P.read(env),
            max_body_bytes=MAX_ACCOUNTS_BODY_BYTES.read(env),
            sends_per_minute=EMAIL_SENDS_PER_MINUTE.read(env),
            sends_per_hour=EMAIL_SENDS_PER_HOUR.read(env),
            sign_ins_free_per_hour=SIGN_INS_FREE_PER_HOUR.read(env),
            sign_in_backoff_cap_seconds=SIGN_IN_BACKOFF_CAP_SECONDS.read(env),
            passwords_per_source_per_minute=PASSWORDS_PER_SOURCE_PER_MINUTE.read(env),
            passwords_per_source_per_hour=PASSWORDS_PER_SOURCE_PER_HOUR.read(env),
            reserved_concurrency=ACCOUNTS_RESERVED_CONCURRENCY.read(env),
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
    product_name: str = PRODUCT_NAME.default
    local_echo: bool = LOCAL_MAIL_ECHO.default == "on"
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmailSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            sender=EMAIL_SENDER_ADDRESS.read(env),
            configuration_set=EMAIL_CONFIGURATION_SET.read(env),
            product_name=PRODUCT_NAME.read(env),
            local_echo=LOCAL_MAIL_ECHO.read(env) == "on",
        )
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class AggregateSettings:
    database: DatabaseSettings
    chunk_size: int = AGGREGATE_CHUNK_SIZE.default
    stop_before_timeout: float = AGGREGATE_STOP_BEFORE_TIMEOUT_SECONDS.default
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AggregateSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            chunk_size=AGGREGATE_CHUNK_SIZE.read(env),
            stop_before_timeout=AGGREGATE_STOP_BEFORE_TIMEOUT_SECONDS.read(env),
        )
        env.check()
        return settings


@dataclass(frozen=True, slots=True)
class ManageSettings:
    database: DatabaseSettings
    max_body_bytes: int = MAX_MANAGE_BODY_BYTES.default
    # Ingest's: each change's answer says when ingest follows it.
    ingest_cache: IngestCacheSettings = IngestCacheSettings()
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ManageSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            max_body_bytes=MAX_MANAGE_BODY_BYTES.read(env),
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
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MigrateSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            migrations_dir=migrations_directory(env.environ),
            role_secret_arns=tuple(
                arn for arn in DB_ROLE_SECRETS.read(env).split(",") if arn.strip()
            ),
        )
        env.check()
        return settings


def migrations_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """MIGRATIONS_DIR, where the migrations were packaged away from the repository."""
    configured = MIGRATIONS_DIR.read(_Reader(os.environ if environ is None else environ))
    return Path(configured) if configured else None


def command_line_database_url(environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL for the command-line tools (make migrate, tools.admin, make aggregate)."""
    url = DATABASE_URL.read(_Reader(os.environ if environ is None else environ))
    if not url:
        raise ConfigurationError("DATABASE_URL is not set: point it at the PostgreSQL to use")
    return url


def command_line_archive_bucket(environ: Mapping[str, str] | None = None) -> str:
    """ARCHIVE_BUCKET for the command-line tools (make maintain, make archive-read)."""
    bucket = _Reader(os.environ if environ is None else environ).optional(ARCHIVE_BUCKET.variable)
    if not bucket:
        raise ConfigurationError("ARCHIVE_BUCKET is not set: name the archive's bucket")
    return bucket


@dataclass(frozen=True, slots=True)
class MaintainSettings:
    database: DatabaseSettings
    archive_bucket: str
    days_ahead: int = PARTITION_DAYS_AHEAD.default
    dedup_window_hours: int = DEDUP_WINDOW_HOURS.default
    chunk_size: int = MAINTAIN_CHUNK_SIZE.default
    stop_before_timeout: float = MAINTAIN_STOP_BEFORE_TIMEOUT_SECONDS.default
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MaintainSettings:
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings.read(env),
            aws=AwsSettings.read(env),
            archive_bucket=ARCHIVE_BUCKET.read(env),
            days_ahead=PARTITION_DAYS_AHEAD.read(env),
            dedup_window_hours=DEDUP_WINDOW_HOURS.read(env),
            chunk_size=MAINTAIN_CHUNK_SIZE.read(env),
            stop_before_timeout=MAINTAIN_STOP_BEFORE_TIMEOUT_SECONDS.read(env),
        )
        env.check()
        return settings
