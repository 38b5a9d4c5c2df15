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


def migrate() -> dict[str, str]:
    from sluice.core.config import MigrateSettings
    from sluice.core.db import Database
    from sluice.schema.migrate import apply_migrations, default_directory, pending
    from sluice.schema.roles import role_credentials, set_role_passwords

    settings = MigrateSettings.from_env()
    # MIGRATIONS_DIR in Lambda (the .sql files are packed beside this module by
    # `make build`); the repository's migrations/ when run from a checkout.
    directory = settings.migrations_dir or default_directory()
    names = [path.name for path in pending(directory, set())]
    if not names:
        # A packaging mistake must not pass for an up-to-date schema.
        raise FileNotFoundError(f"no migrations in {directory}")
    database = Database(settings.database, settings.aws)
    try:
        applied = apply_migrations(database.connection(), directory)
        # The functions' roles exist now; give each the password its secret holds
        # (every deploy: a secret replaced by CloudFormation takes effect at once).
        roles = set_role_passwords(
            database.connection(), role_credentials(list(settings.role_secret_arns), settings.aws)
        )
    finally:
        database.close()
    _log("migrations applied", applied=applied, latest=names[-1], roles=roles)
    return {"Applied": ", ".join(applied) or "none", "Latest": names[-1]}


def _published_version(arn: Any) -> tuple[str, int] | None:
    """(function ARN, version number) of a published version's ARN; None for anything else."""
    if not isinstance(arn, str):
        return None
    function, _, version = arn.rpartition(":")
    return (function, int(version)) if function and version.isdigit() else None


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
    wanted = _published_version((event.get("ResourceProperties") or {}).get("CodeVersion"))
    leaving = _published_version((event.get("OldResourceProperties") or {}).get("CodeVersion"))
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
        if is_rollback(event):
            # Migrations only go forward (README): the schema keeps whatever the failed
            # deploy committed, and the database is not touched, so a rollback succeeds
            # even when the database is why the deploy failed.
            _log("stack rollback; migrations left as they are")
            responder.send("SUCCESS", "stack rollback: schema left as it is", ROLLBACK_DATA)
            return
        responder.send("SUCCESS", "schema is up to date", migrate())
    except Exception as exc:  # every failure must reach CloudFormation
        _log("migration failed", error=type(exc).__name__, detail=str(exc))
        responder.send("FAILED", f"{type(exc).__name__}: {exc}")
    finally:
        timer.cancel()
