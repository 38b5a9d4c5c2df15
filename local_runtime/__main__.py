"""`python -m local_runtime` (what `make dev` runs): the template's whole topology until Ctrl-C."""

from __future__ import annotations

import argparse
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
        help="at Ctrl-C, how long queue triggers keep working before the runtime stops",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=RuntimeConfig.max_workers,
        help=f"per function (default {RuntimeConfig.max_workers})",
    )
    # Flags, not the environment: a DATABASE_URL exported for other tools (the banner's
    # admin line) must not make the next start use another database without a word.
    parser.add_argument(
        "--database-url", help="your PostgreSQL instead of the embedded one (queues too)"
    )
    parser.add_argument("--sqs-endpoint-url", help="another SQS endpoint instead of local_queue")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("-v", "--verbose", action="store_true", help="show the helpers' logs")
    return parser.parse_args(argv)


def _logging(verbose: bool) -> None:
    # No caller lookup (the logging HOWTO's "Optimization"): the lines name no source
    # file, and under load the runtime logs a few lines per request.
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("local_runtime")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def banner(runtime: Runtime) -> str:
    topology = runtime.topology
    assert topology is not None
    lines = [f"local runtime for {runtime.template.path.name}", f"  API       {runtime.api_url}"]
    lines.append(f"  console   {runtime.api_url}/_local/console/ (the template's dashboard, live)")
    for route in topology.routes:
        lines.append(f"  route     {route.route_key} -> {route.function}")
    for service_route in topology.service_routes:
        lines.append(f"  route     {service_route.route_key} -> {service_route.function}")
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
    for line in runtime.not_run:
        lines.append(f"  not run   {line}")
    for line in runtime.differs:
        lines.append(f"  differs   {line}")
    lines.append(f"  AWS APIs  {runtime.aws_endpoint_url} (moto)")
    if runtime.sqs_endpoint_url:
        given = runtime.config.sqs_endpoint_url
        kind = "" if given else " (local_queue: kept in PostgreSQL)"
        lines.append(f"  SQS       {runtime.sqs_endpoint_url}{kind}")
    if runtime.database_url:
        lines.append(f"  database  {runtime.database_url}")
    lines += runtime.setup_lines
    lines.append("Ctrl-C stops: queued messages stay queued for the next start.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["invoke"]:
        from local_runtime import invoke

        return invoke.main(argv[1:])
    if argv[:1] == ["env"]:
        from local_runtime import env

        return env.main(argv[1:])
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
        database_url=args.database_url,
        sqs_endpoint_url=args.sqs_endpoint_url,
        drain_seconds=args.drain_seconds,
        max_workers=args.max_workers,
        region=args.region,
    )
    for variable, flag in (
        ("DATABASE_URL", "--database-url"),
        ("AWS_ENDPOINT_URL_SQS", "--sqs-endpoint-url"),
    ):
        if os.environ.get(variable) and not getattr(args, flag[2:].replace("-", "_")):
            print(
                f"{variable} is set in this shell; the runtime does not use it"
                f' (DEV_ARGS="{flag} ..." does)',
                flush=True,
            )
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stopping.is_set():
            # local_queue keeps every message in PostgreSQL: in-flight ones come back
            # after their visibility timeout, as after a crash.
            print(
                "second signal: quitting now; messages in flight come back after their"
                " visibility timeout",
                flush=True,
            )
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
    while not stopping.wait(1):
        pass
    print(
        f"stopping: draining the queues (up to {args.drain_seconds:g} s; Ctrl-C again quits now)",
        flush=True,
    )
    runtime.stop()
    print("stopped; queued messages stay in local_queue for the next start", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
