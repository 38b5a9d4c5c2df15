"""`python -m local_runtime` (what `make dev` runs): the template's whole topology until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from local_runtime.runtime import Runtime, RuntimeConfig
from local_runtime.template import TemplateError


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_runtime", description=__doc__)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument(
        "--settings",
        type=Path,
        help="local settings: parameters, overrides, environment (default: local-env.json "
        "beside the template, if there is one)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".local/dev"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        help="at Ctrl-C, how long queue triggers keep working before what is queued is saved",
    )
    parser.add_argument("--max-workers", type=int, default=8, help="per function")
    parser.add_argument(
        "--queues",
        choices=["local", "moto"],
        default="local",
        help="local: SQS-compatible queues kept in PostgreSQL, which survive even kill -9"
        " (default); moto: moto's in-memory queues, saved to a file at a clean stop",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("-v", "--verbose", action="store_true", help="show the helpers' logs")
    return parser.parse_args(argv)


def _logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("local_runtime")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


# Where tools that drive a running stack (make loadtest) find it.
STATE_FILE = "runtime.json"


def _write_state(path: Path, runtime: Runtime) -> None:
    state = {
        "pid": os.getpid(),
        "api_url": runtime.api_url,
        "database_url": runtime.database_url,
        "aws_endpoint_url": runtime.aws_endpoint_url,
        "sqs_endpoint_url": runtime.sqs_url,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)


def banner(runtime: Runtime) -> str:
    topology = runtime.topology
    assert topology is not None
    lines = [f"local runtime for {runtime.template.path.name}", f"  API       {runtime.api_url}"]
    for route in topology.routes:
        lines.append(f"  route     {route.route_key} -> {route.function}")
    for trigger in topology.triggers:
        state = "" if trigger.enabled else " (disabled)"
        lines.append(
            f"  queue     {trigger.queue} -> {trigger.function} (batch {trigger.batch_size},"
            f" window {trigger.window_seconds:g} s){state}"
        )
    for schedule in topology.schedules:
        lines.append(
            f"  schedule  {schedule.expression} -> {schedule.function}"
            f"  (fire now: curl -X POST {runtime.api_url}/_local/schedules/"
            f"{schedule.function}/{schedule.event})"
        )
    lines.append(f"  AWS APIs  {runtime.aws_endpoint_url} (moto)")
    if runtime.sqs_endpoint_url:
        kind = " (local_queue: kept in PostgreSQL)" if runtime.durable_queues else ""
        lines.append(f"  SQS       {runtime.sqs_endpoint_url}{kind}")
    if runtime.database_url:
        lines.append(f"  database  {runtime.database_url}")
    if runtime.restored:
        lines.append(f"  re-queued {runtime.restored} messages saved at the last stop")
    lines += runtime.setup_lines
    lines.append("Ctrl-C stops: queued messages are saved and come back at the next start.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _logging(args.verbose)
    settings = args.settings
    if settings is None:
        default = args.template.parent / "local-env.json"
        settings = default if default.exists() else None
    config = RuntimeConfig(
        template=args.template,
        settings=settings,
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        database_url=os.environ.get("DATABASE_URL") or None,
        sqs_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SQS") or None,
        drain_seconds=args.drain_seconds,
        max_workers=args.max_workers,
        queue_backend=args.queues,
        region=args.region,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stopping.is_set():
            print("second signal: quitting now; queued messages are lost", flush=True)
            os._exit(130)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        runtime = Runtime(config).start()
    except (TemplateError, OSError, RuntimeError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    print(banner(runtime), flush=True)
    _write_state(args.state_dir / STATE_FILE, runtime)
    while not stopping.wait(1):
        pass
    print(
        f"stopping: draining the queues (up to {args.drain_seconds:g} s; Ctrl-C again quits now)",
        flush=True,
    )
    saved = runtime.stop()
    (args.state_dir / STATE_FILE).unlink(missing_ok=True)
    if runtime.durable_queues:
        print("stopped; queued messages stay in local_queue for the next start", flush=True)
    else:
        print(f"stopped; {saved} queued messages saved for the next start", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
