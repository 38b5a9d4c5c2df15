"""One function's execution environment: what Lambda's Python runtime does, in a process.

Run as `python -P _worker.py` (nothing of this folder on sys.path) with the
function's environment, its code folder as the working directory and, on
PYTHONPATH, that folder and its layers, as in Lambda (/var/task, /opt/python).
It imports the handler once (the init phase), then answers invocations read as
JSON lines on stdin. Answers go back on the original stdout; the handler's own
prints and logs go to stderr, which the runtime passes through.

Only the standard library is imported here, so the handler's modules are the
first of their names the process sees: two functions with an `app.py` each never
share a module, as in Lambda. The one exception is orjson, found on the function's
own path (its layer) when it is there: the stdlib's json takes ~15 ms to read a
100-message batch of 10,000 events, a fifth of the store worker's time.

No connection to AWS's own endpoints leaves a worker: a client that ignores
AWS_ENDPOINT_URL (a bundled botocore older than 1.31) or names AWS's endpoint fails
at once with a line saying so, instead of reaching AWS, or hanging to the timeout on
a network that cannot. The name lookup is where every client's connection starts,
whatever the library or its version (an environment proxy is honoured by some
clients only, and would refuse the handler's other HTTP calls too).
"""

import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

try:
    import orjson
except ImportError:  # a function without orjson on its path
    orjson = None

# orjson reads integers past 64 bits as floats: a line with a run of 19 digits (which
# every such integer has) is read by the standard library, which keeps them exact. The
# run is found by making every digit a 0 and searching for nineteen of them: a regex
# (\d{19}) tries a match at every digit of the line, ~15 us an event of the store's
# 1,000-event batches (more than orjson's whole read), this ~1 us.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_DIGITS = b"0" * 19


def _has_long_digits(line: bytes) -> bool:
    return _LONG_DIGITS in line.translate(_DIGITS_AS_ZERO)


# How a line the runtime wrote with orjson starts (local_runtime/workers.py): orjson
# refuses to write an integer past 64 bits, so the line holds none and needs no search,
# which takes as long as orjson's read of the line.
EXACT_LINE = b'{"exact":true,'


# AWS's endpoint domains: the partitions' (aws, aws-cn) and the dual-stack one.
_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


class AwsEndpointRefused(RuntimeError):
    """Not an OSError: clients retry those, and the call must fail at once."""


def _refuse_aws_endpoints() -> None:
    lookup = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        name = name.lower().rstrip(".")
        if ("." + name).endswith(_AWS_DOMAINS):
            message = (
                f"local runtime refused a connection to {name}: this is AWS's own endpoint;"
                " locally, clients reach the stand-ins through AWS_ENDPOINT_URL"
                " (botocore 1.31 or later)"
            )
            print(message, file=sys.stderr, flush=True)
            raise AwsEndpointRefused(message)
        return lookup(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def _read_request(line: bytes):
    if orjson is not None and line.startswith(EXACT_LINE):
        return orjson.loads(line)
    if orjson is not None and not _has_long_digits(line):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:  # NaN, lone surrogates: the standard library reads them
            pass
    return json.loads(line)


def _answer_channel():
    """Keeps the real stdout for answers and points fd 1 (print) at stderr.

    The handler's output is line-buffered, as stderr already is: one write per
    line. Unbuffered (`python -u`), a `print` is two writes (the text, then the
    newline), and each wakes the runtime's log reader for half a line: two wake-ups
    (and GIL hand-offs) more per ingest request, which logs two lines (its own and
    the metrics'). What is left unflushed is written before each answer.
    """
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)
    return channel


def _flush_output() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


class LambdaContext:
    def __init__(self, request_id: str, deadline: float) -> None:
        env = os.environ
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = env["LOCAL_FUNCTION_ARN"]
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.time()) * 1000), 0)


_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _JsonFormatter(logging.Formatter):
    """The fields Lambda's JSON log format gives a record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", None) or None,
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["errorType"] = record.exc_info[0].__name__
            entry["errorMessage"] = str(record.exc_info[1])
            entry["stackTrace"] = traceback.format_tb(record.exc_info[2])
        return json.dumps({k: v for k, v in entry.items() if v is not None}, default=str)


def _lambda_logging() -> None:
    """The root logger as Lambda's Python runtime sets it up before importing the handler.

    A handler on the root logger with Lambda's text line (level, time, request id,
    message) or its JSON object. The level is set only when the function's
    LoggingConfig gives one (JSON logs: ApplicationLogLevel, INFO by default); with
    text logs the root stays at WARNING, so `logging.info` shows only once the
    handler's code lowers a level, exactly as in Lambda.
    """
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(_RequestIdFilter())
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = "DEBUG" if level == "TRACE" else level
    root = logging.getLogger()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)
    root.addHandler(handler)


def _error(exc: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def main() -> None:
    global _request_id
    answers = _answer_channel()

    def send(message: dict) -> None:
        _flush_output()  # the invocation's logs come before its answer
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    _lambda_logging()
    _refuse_aws_endpoints()
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    started = time.monotonic()
    handler = init_error = None
    try:
        module = importlib.import_module(module_name.replace("/", "."))
        handler = getattr(module, function_name)
    except Exception as exc:  # reported on every invocation, as Lambda does
        kind = "Runtime.HandlerNotFound" if isinstance(exc, AttributeError) else None
        init_error = _error(exc, kind or "Runtime.ImportModuleError")
        traceback.print_exc()
    send({"ready": True, "init_ms": round((time.monotonic() - started) * 1000, 1)})

    for line in sys.stdin.buffer:
        request = _read_request(line)
        if init_error is not None:
            send({"error": init_error})
            continue
        _request_id = request["request_id"]
        context = LambdaContext(request["request_id"], request["deadline"])
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # the runtime reports it, as Lambda does
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            send({"error": _error(exc)})
            continue
        try:
            send({"result": result})
        except (TypeError, ValueError) as exc:
            send({"error": _error(exc, "Runtime.MarshalError")})


if __name__ == "__main__":
    main()
