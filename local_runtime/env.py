"""`python -m local_runtime env [--state-dir DIR] COMMAND...`: a command run against `make dev`.

The operator's commands (`make archive-read`, `maintain`, `redrive`, `mail`,
`migrate`, `rebuild-aggregates`) read AWS's and PostgreSQL's usual variables. While
`make dev` runs from the state folder, each of those variables the shell leaves
unset is taken from it (runtime.json): DATABASE_URL, AWS_ENDPOINT_URL(_SQS), the
region, moto's placeholder credentials, and what the settings' setup hook adds
(Sluice: ARCHIVE_BUCKET, EVENTS_DLQ_URL). What the shell sets wins. Without a running
`make dev` the command runs unchanged, and says itself what it misses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_runtime.runtime import running_stack


def stack_environment(state: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add: the stack's, except those `environ` sets."""
    values: Mapping[str, str] = state.get("environment") or {}
    return {name: value for name, value in values.items() if not environ.get(name)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_runtime env",
        description="Run a command with the running make dev's variables for those unset.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".local/dev"))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to run")
    state = running_stack(args.state_dir)
    environ = dict(os.environ)
    if state is not None:
        added = stack_environment(state, environ)
        environ.update(added)
        if added:
            print(
                f"using make dev's stack ({args.state_dir}) for {', '.join(sorted(added))}",
                file=sys.stderr,
                flush=True,
            )
    try:
        os.execvpe(command[0], command, environ)  # noqa: S606 - the operator's own command
    except OSError as exc:
        print(f"cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process
