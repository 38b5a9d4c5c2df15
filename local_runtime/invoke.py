"""`python -m local_runtime invoke` (make invoke): one function, one event, as `sam local invoke`.

The function runs exactly as under `make dev`: the same template and settings, its
own environment (plus an env-vars file, as `sam local invoke --env-vars` takes),
its timeout, a worker process of its own. When `make dev` is running (its state
folder holds runtime.json), the function reaches that stack's database, queues and
moto; otherwise the stand-ins it needs start for this one call (the embedded
PostgreSQL keeps `make dev`'s data) and stop after it. The handler's logs go to
stderr between START and END/REPORT lines, and the response, or the error as Lambda
reports it, is printed on stdout; the exit code is 1 when the function failed. A
function behind API routes takes API Gateway's request event only: a bare body is
refused with a sentence (exit 2) instead of failing inside the handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_runtime import template as sam
from local_runtime.runtime import (
    Runtime,
    RuntimeConfig,
    local_aws_environment,
    resolve_dependencies,
    running_stack,
    write_inline_code,
)
from local_runtime.workers import FunctionPool, Outcome


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_runtime invoke",
        description="Invoke one function of the template with one event, as make dev runs it.",
    )
    parser.add_argument("function", help="the function's logical id (StoreFunction)")
    parser.add_argument(
        "--event", "-e", default=None, help="a JSON file with the event, or - for stdin ({})"
    )
    parser.add_argument(
        "--env-vars",
        "-n",
        type=Path,
        help='variables over the template\'s: {"Parameters": {...}, "<LogicalId>": {...}}',
    )
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--settings", type=Path, help="default: local-env.json beside the template")
    parser.add_argument("--state-dir", type=Path, default=Path(".local/dev"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    return parser.parse_args(argv)


# Top-level keys of API Gateway's events (payload 2.0 and 1.0): an event with none of
# them is a request body, not a request.
API_EVENT_KEYS = {"version", "routeKey", "rawPath", "requestContext", "path", "httpMethod"}


def _not_its_event(
    topology: sam.Topology, function: str, event: Any, events_dir: Path
) -> str | None:
    """Why `event` cannot be what API Gateway sends `function`, if it cannot.

    A function behind routes reads the request from API Gateway's event; a bare body
    would fail inside the handler (a KeyError), which reads like a bug of the handler.
    """
    routes = [route.route_key for route in topology.routes if route.function == function]
    if not routes or (isinstance(event, dict) and API_EVENT_KEYS & event.keys()):
        return None
    sample = next(
        iter(sorted(events_dir.glob(f"{function.removesuffix('Function').lower()}-*.json"))), None
    )
    like = f" ({sample} is one)" if sample else ""
    return (
        f"{function} is invoked by API Gateway ({', '.join(routes[:3])}): the event must be"
        f" the request event API Gateway sends{like}, not a request body. To send a body,"
        " use curl against make dev (its banner prints the line)."
    )


def _read_event(source: str | None) -> Any:
    if source is None:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    return json.loads(text)


def _with_env_vars(function: sam.Function, path: Path | None) -> sam.Function:
    if path is None:
        return function
    variables = json.loads(path.read_text())
    environment = dict(function.environment)
    for scope in ("Parameters", function.logical_id):
        for key, value in (variables.get(scope) or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value if isinstance(value, str) else json.dumps(value)
    return dataclasses.replace(function, environment=environment)


class _LogLine(logging.Formatter):
    """A handler's own line, without the `Function | ` prefix make dev adds."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage().split(" | ", 1)[-1]


def _show_handler_logs() -> None:
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(_LogLine())
    logger = logging.getLogger("local_runtime.handler")
    logger.addHandler(stream)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # The runtime's own lines (helpers starting, warnings) too, but only warnings.
    runtime_logs = logging.StreamHandler(sys.stderr)
    runtime_logs.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("local_runtime").addHandler(runtime_logs)
    logging.getLogger("local_runtime").setLevel(logging.WARNING)


def invoke_once(
    function: sam.Function, environment: dict[str, str], python_path: Sequence[Path], event: Any
) -> Outcome:
    """One invocation in a worker of its own, between sam's START and END lines."""
    write_inline_code(function)
    pool = FunctionPool(function, environment, python_path, max_workers=1)
    request_id = str(uuid.uuid4())
    print(f"START RequestId: {request_id} Version: $LATEST", file=sys.stderr, flush=True)
    try:
        return pool.invoke(event, request_id)
    finally:
        pool.close()  # waits for the worker to exit and its logs to be read


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    _show_handler_logs()
    settings = args.settings
    if settings is None and (args.template.parent / "local-env.json").exists():
        settings = args.template.parent / "local-env.json"
    try:
        event = _read_event(args.event)
    except (OSError, ValueError) as exc:
        print(f"cannot read the event: {exc}", file=sys.stderr)
        return 2
    template = sam.load(args.template, settings)
    if args.function not in template.function_ids():
        print(
            f"{args.function} is not a function of {args.template}: "
            + ", ".join(template.function_ids()),
            file=sys.stderr,
        )
        return 2
    stack = running_stack(args.state_dir)
    runtime = None
    try:
        if stack is not None:
            local = sam.LocalValues(
                region=stack.get("region", args.region),
                api_url=stack["api_url"],
                aws_endpoint_url=stack["aws_endpoint_url"],
                database_url=stack.get("database_url"),
                state_dir=str(args.state_dir.resolve()),
                sqs_endpoint_url=stack.get("sqs_endpoint_url"),
            )
            topology = template.topology(local)
            print(f"using make dev's stack at {stack['api_url']}", file=sys.stderr)
        else:
            print(
                "make dev is not running: starting what the function needs for this call",
                file=sys.stderr,
                flush=True,
            )
            runtime = Runtime(
                RuntimeConfig(
                    template=args.template,
                    settings=settings,
                    state_dir=args.state_dir,
                    port=0,
                    region=args.region,
                )
            ).start(serve=False)
            assert runtime.topology is not None
            topology = runtime.topology
            local = sam.LocalValues(
                region=args.region,
                api_url=runtime.api_url,
                aws_endpoint_url=runtime.aws_endpoint_url,
                sqs_endpoint_url=runtime.sqs_url,
            )
        refused = _not_its_event(topology, args.function, event, args.template.parent / "events")
        if refused:
            print(refused, file=sys.stderr)
            return 2
        function = _with_env_vars(topology.functions[args.function], args.env_vars)
        environment = local_aws_environment(
            local.region, local.aws_endpoint_url, local.sqs_endpoint_url
        )
        # make dev's cache: what it installed is not installed again
        deps_dir = Path(stack["deps_dir"]) if stack and "deps_dir" in stack else None
        if deps_dir is None:
            deps_dir = runtime.deps_dir if runtime else args.state_dir.resolve() / "deps"
        resolution = resolve_dependencies(template, function, deps_dir)
        outcome = invoke_once(function, environment, resolution.python_path, event)
    except (sam.TemplateError, OSError, RuntimeError) as exc:
        print(f"cannot invoke: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.stop()
    print(f"END RequestId: {outcome.request_id}", file=sys.stderr)
    print(
        f"REPORT RequestId: {outcome.request_id}\tDuration: {outcome.duration_ms:.2f} ms"
        f"\tMemory Size: {function.memory_mb} MB",
        file=sys.stderr,
        flush=True,
    )
    print(json.dumps(outcome.result if outcome.ok else outcome.error), flush=True)
    return 0 if outcome.ok else 1  # the error is printed; a script must see it failed
