"""CloudFormation custom resource: applies migrations/*.sql when the stack is created or updated.

Every path ends in an answer to CloudFormation's pre-signed S3 URL, even a failed
import or a run that outlives the function: an unanswered custom resource holds
the deploy until its ServiceTimeout. So only the standard library is imported at
module level, and a timer answers FAILED shortly before Lambda's deadline.

Why not crhelper (aws-cloudformation's custom-resource helper, read at 2.0.12), which
does the same job: its timer fires 0.5 s before the deadline and nothing stops it and
the work from both answering (no lock, no "answered" flag), so a late FAILED can
follow a SUCCESS; its PUT has no timeout and retries forever (the repository's open
issue #34: a function in a VPC, as this one is, that cannot reach S3 hangs until
Lambda kills it and CloudFormation waits out ServiceTimeout); it keeps the last 240
characters of a long Reason, where the exception's name is the first; it imports
boto3 and builds three clients (Lambda, EventBridge, Logs: for its polling mode,
unused here) before it can answer anything, and sets the root logger's level. What
it would save is the fifty lines of `Responder`; the rollback rule (`is_rollback`)
would stay ours either way.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

# One schema per stack: a constant id means an Update never looks like a replacement
# (which would make CloudFormation send a Delete for the "old" resource).
PHYSICAL_ID = "sluice-schema"
DEADLINE_MARGIN_SECONDS = 10
MAX_REASON_CHARS = 1000  # the whole response must stay under 4 KiB
# What a rollback answers: Latest feeds the stack's SchemaVersion output, and the
# rollback does not read the database to learn it.
ROLLBACK_DATA = {"Applied": "none (stack rollback)", "Latest": "unchanged by the rollback"}
UNCHANGED_CODE = "none (code unchanged)"


class Responder:
    """Answers CloudFormation once; whoever answers first (the work or the timer) wins."""

    def __init__(self, event: dict[str, Any], attempts: int = 3) -> None:
        self.event = event
        self.attempts = attempts
        self._lock = threading.Lock()
        self.answered: str | None = None

    def send(self, status: str, reason: str = "", data: dict[str, str] | None = None) -> None:
        with self._lock:
            if self.answered:
                return
            self.answered = status
            body = json.dumps(
                {
                    "Status": status,
                    "Reason": reason[:MAX_REASON_CHARS] or status,
                    "PhysicalResourceId": self.event.get("PhysicalResourceId", PHYSICAL_ID),
                    "StackId": self.event["StackId"],
                    "RequestId": self.event["RequestId"],
                    "LogicalResourceId": self.event["LogicalResourceId"],
                    "Data": data or {},
                }
            ).encode()
            request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed URL
                self.event["ResponseURL"],
                data=body,
                method="PUT",
                # The URL is signed for an empty content type.
                headers={"Content-Type": "", "Content-Length": str(len(body))},
            )
            for attempt in range(1, self.attempts + 1):
                try:
                    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                        return
                except OSError as exc:
                    _log("response not delivered", attempt=attempt, error=str(exc))
                    time.sleep(attempt)


def _log(message: str, **fields: Any) -> None:
    # Plain JSON lines: Powertools lives in the layer, which may be what failed to load.
    print(json.dumps({"level": "INFO", "message": message, **fields}))


def _packaged(directory: Any) -> list[str]:
    from sluice.schema.migrate import pending

    names = [path.name for path in pending(directory, set())]
    if not names:
        # A packaging mistake must not pass for an up-to-date schema.
        raise FileNotFoundError(f"no migrations in {directory}")
    return names


def migrate(role_secrets: tuple[str, ...] | None = None, *, apply: bool = True) -> dict[str, str]:
    """Applies the packaged migrations (unless `apply` is False), then sets the roles' passwords.

    `role_secrets` are the request's RoleSecrets: the published version's environment
    keeps the secret ARNs of the deploy that published it, so a secret replaced since
    is only named by the request. DB_ROLE_SECRETS serves when it names none.
    """
    from sluice.core.config import MigrateSettings
    from sluice.core.db import Database
    from sluice.schema.migrate import apply_migrations, default_directory
    from sluice.schema.roles import role_credentials, set_role_passwords

    settings = MigrateSettings.from_env()
    # MIGRATIONS_DIR in Lambda (the .sql files are packed beside this module by
    # `make build`); the repository's migrations/ when run from a checkout.
    directory = settings.migrations_dir or default_directory()
    names = _packaged(directory)
    secrets = list(role_secrets if role_secrets is not None else settings.role_secret_arns)
    database = Database(settings.database, settings.aws)
    try:
        applied = apply_migrations(database.connection(), directory) if apply else []
        # The functions' roles exist now; give each the password its secret holds
        # (every deploy: a secret replaced by CloudFormation takes effect at once).
        roles = set_role_passwords(database.connection(), role_credentials(secrets, settings.aws))
    finally:
        database.close()
    _log("migrations applied", applied=applied, latest=names[-1], roles=roles)
    return {
        "Applied": ", ".join(applied) or ("none" if apply else UNCHANGED_CODE),
        "Latest": names[-1],
    }


def unchanged_code_data() -> dict[str, str]:
    """What an Update that keeps the code answers, read from the package, not the database."""
    from sluice.core.config import migrations_directory
    from sluice.schema.migrate import default_directory

    return {
        "Applied": UNCHANGED_CODE,
        "Latest": _packaged(migrations_directory() or default_directory())[-1],
    }


def _published_version(arn: Any) -> tuple[str, int] | None:
    """(function ARN, version number) of a published version's ARN; None for anything else."""
    if not isinstance(arn, str):
        return None
    function, _, version = arn.rpartition(":")
    return (function, int(version)) if function and version.isdigit() else None


def _versions(event: dict[str, Any]) -> tuple[Any, Any]:
    wanted = _published_version((event.get("ResourceProperties") or {}).get("CodeVersion"))
    leaving = _published_version((event.get("OldResourceProperties") or {}).get("CodeVersion"))
    return wanted, leaving


def requested_role_secrets(event: dict[str, Any], key: str = "ResourceProperties") -> Any:
    """The RoleSecrets of the request (or of the old properties): a tuple of ARNs, or None."""
    secrets = (event.get(key) or {}).get("RoleSecrets")
    if isinstance(secrets, list) and all(isinstance(arn, str) for arn in secrets):
        return tuple(secrets)
    return None


def keeps_the_code(event: dict[str, Any]) -> bool:
    """Whether an Update asks for the very version it leaves (something else changed).

    CodeVersion names a published version, and the .sql files are packed into it: its
    migrations were applied when a deploy first asked for it and succeeded (a failed
    one would have rolled the stack back to an older version). So the request, a
    deploy or a rollback alike, has nothing to migrate.
    """
    if event.get("RequestType") != "Update":
        return False
    wanted, leaving = _versions(event)
    return bool(wanted and leaving and wanted == leaving)


def is_rollback(event: dict[str, Any]) -> bool:
    """Whether CloudFormation is rolling an Update back rather than deploying forward.

    When a deploy fails after this resource was updated, the rollback sends another
    Update whose ResourceProperties are the *old* template's and whose
    OldResourceProperties are the failed deploy's. CodeVersion is a published version
    of the migrate function, and Lambda numbers versions upwards, so a request that
    asks for an older version than the one it leaves is a rollback. It may reach new
    code or old (CloudFormation restores the alias and this resource in an order we
    do not control), so both must recognise it: re-running migrations here would
    re-apply the very migration that failed and leave the stack in
    UPDATE_ROLLBACK_FAILED. Versions of different functions (the function was
    replaced) cannot be compared and count as a forward deploy.
    """
    if event.get("RequestType") != "Update":
        return False
    wanted, leaving = _versions(event)
    return bool(wanted and leaving and wanted[0] == leaving[0] and wanted[1] < leaving[1])


def handler(event: dict[str, Any], context: Any) -> None:
    responder = Responder(event)
    seconds_left = context.get_remaining_time_in_millis() / 1000
    timer = threading.Timer(
        max(seconds_left - DEADLINE_MARGIN_SECONDS, 1.0),
        responder.send,
        args=("FAILED", "timed out before the migrations finished"),
    )
    timer.daemon = True
    timer.start()
    _log("custom resource request", request_type=event.get("RequestType"))
    try:
        if event.get("RequestType") == "Delete":
            # The schema belongs to the database, which has its own deletion policy.
            responder.send("SUCCESS", "nothing to undo")
            return
        secrets = requested_role_secrets(event)
        rollback = is_rollback(event)
        if rollback or keeps_the_code(event):
            # No migration to apply: a rollback's code is older (and migrations only go
            # forward, README), an unchanged version's were applied when it was deployed.
            if secrets is None or secrets == requested_role_secrets(event, "OldResourceProperties"):
                # The database is not touched, so this succeeds even when the database
                # is why a deploy failed.
                _log("no migration to apply; database left alone", rollback=rollback)
                if rollback:
                    responder.send("SUCCESS", "stack rollback: schema left as it is", ROLLBACK_DATA)
                else:
                    responder.send(
                        "SUCCESS", "code unchanged: nothing to migrate", unchanged_code_data()
                    )
                return
            # A role secret was replaced, or is put back by a rollback: the functions read
            # that secret as soon as this update ends, so its password is set now.
            data = migrate(secrets, apply=False)
            responder.send("SUCCESS", "role passwords set", ROLLBACK_DATA if rollback else data)
            return
        responder.send("SUCCESS", "schema is up to date", migrate(secrets))
    except Exception as exc:  # every failure must reach CloudFormation
        _log("migration failed", error=type(exc).__name__, detail=str(exc))
        responder.send("FAILED", f"{type(exc).__name__}: {exc}")
    finally:
        timer.cancel()
