"""Invoking functions as Lambda does: one process per execution environment, a timeout that ends it.

A function has a pool of workers (local_runtime/_worker.py), each running one
invocation at a time and reused while warm. A worker whose invocation outlives
the function's Timeout is killed, as Lambda discards a timed-out environment;
the next invocation starts a fresh one (a cold start). When the function's code
changes, `reload` retires its warm workers (busy ones when their invocation ends),
so the next invocation imports the new code, as a new deployment would. A function
with ReservedConcurrentExecutions runs at most that many invocations at once: one more
is throttled at once, as Lambda refuses it, instead of waiting for a worker.

A worker runs `python -S`: only the path it is given (local_runtime/deps.py: the
code, its layers, their packages, the runtime's boto3), none of the runtime's own
virtualenv, so a handler imports what it would import in Lambda and nothing more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from local_runtime import eventloop
from local_runtime.template import Function

log = logging.getLogger("local_runtime")
handler_log = logging.getLogger("local_runtime.handler")

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
INIT_TIMEOUT_SECONDS = 30.0  # Lambda allows 10 s; a busy 2-core laptop importing boto3 needs slack
# What a worker inherits from the runtime's own environment; everything else is the function's.
# Not HOME: boto3 would read the developer's ~/.aws files.
INHERITED = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class Outcome:
    request_id: str
    duration_ms: float
    result: Any = None
    error: dict | None = None  # errorType, errorMessage, stackTrace
    cold: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timed_out(self) -> bool:
        return bool(self.error) and self.error.get("errorType") == "Sandbox.Timedout"


class WorkerDied(Exception):
    pass


class Throttled(Exception):
    """Every execution the function reserved is busy: Lambda refuses the invocation."""


class _Pipes(asyncio.SubprocessProtocol):
    """A worker's stdout (answers) and stderr (the handler's output), read on the loop."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.worker._answer_data(data)
        else:
            self.worker._log_data(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.worker._answers_ended()

    def process_exited(self) -> None:
        self.worker._exited()

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker._closed()


class Worker:
    """One worker process; used by one invocation at a time (FunctionPool sees to that).

    Its pipes are read by the runtime's event loop (local_runtime/eventloop.py): the
    request is written to its stdin and the invocation awaits its answer line, with a
    deadline. No thread waits on a worker, for its answers or for its log lines.
    """

    def __init__(self, function: Function, environ: dict[str, str], generation: int = 0) -> None:
        self.function = function
        self.environ = environ
        self.generation = generation  # the pool's code generation it imported
        self.ready = False
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._answers = b""  # answer bytes read past the last full line
        self._logs = b""  # output bytes read past the last full line
        self._waiter: asyncio.Future[dict] | None = None
        self._returncode: int | None = None
        self._answers_open = True  # until its stdout ends, an answer may still come
        self._done: asyncio.Future[None] = self._loop.create_future()

    async def start(self) -> None:
        self._transport, _ = await self._loop.subprocess_exec(
            lambda: _Pipes(self),
            # -S: no site-packages (the runtime's virtualenv); -P: not this folder either
            sys.executable,
            "-S",
            "-P",
            str(WORKER_SCRIPT),
            cwd=self.function.code_dir,
            env=self.environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: Ctrl-C reaches the runtime, which stops workers when it is done.
            start_new_session=True,
        )
        self._stdin = self._transport.get_pipe_transport(0)  # type: ignore[assignment]

    @property
    def pid(self) -> int | None:
        return self._transport.get_pid() if self._transport else None

    # ---- called by _Pipes, on the loop
    def _answer_data(self, data: bytes) -> None:
        self._answers += data
        if self._waiter is not None and not self._waiter.done() and b"\n" in self._answers:
            line, _, self._answers = self._answers.partition(b"\n")
            self._waiter.set_result(json.loads(line))

    def _log_data(self, data: bytes) -> None:
        *lines, self._logs = (self._logs + data).split(b"\n")
        for line in lines:
            self._log(line)

    def _log(self, line: bytes) -> None:
        # errors="replace": a handler printing bytes must not break its log lines
        handler_log.info("%s | %s", self.function.logical_id, line.decode("utf-8", "replace"))

    def _answers_ended(self) -> None:
        self._answers_open = False
        self._fail_waiter()

    def _exited(self) -> None:
        assert self._transport is not None
        self._returncode = self._transport.get_returncode()
        self._fail_waiter()

    def _fail_waiter(self) -> None:
        """Once it exited and every answer it wrote was read, none is coming."""
        if self._answers_open or self._returncode is None:
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(WorkerDied(f"exited with status {self._returncode}"))

    def _closed(self) -> None:
        if self._logs:  # its last words, without a newline
            self._log(self._logs)
            self._logs = b""
        if self._transport is not None:
            self._transport.close()
        if not self._done.done():
            self._done.set_result(None)

    # ---- used by the pool, on the loop
    async def _next(self, timeout: float) -> dict:
        """The worker's next answer line, parsed; TimeoutError, or WorkerDied at its end."""
        if b"\n" in self._answers:
            line, _, self._answers = self._answers.partition(b"\n")
            return json.loads(line)
        if not self._answers_open and self._returncode is not None:
            raise WorkerDied(f"exited with status {self._returncode}")
        waiter = self._waiter = self._loop.create_future()
        expiry = self._loop.call_later(max(timeout, 0), _expire, waiter)
        try:
            return await waiter
        finally:
            expiry.cancel()
            self._waiter = None

    async def wait_ready(self) -> None:
        if not self.ready:
            await self._next(INIT_TIMEOUT_SECONDS)
            self.ready = True

    async def invoke(self, event: Any, request_id: str, deadline: float) -> dict:
        assert self._stdin is not None
        line = _request_line(event, request_id, deadline)
        try:
            self._stdin.write(line)
        except (OSError, RuntimeError) as exc:  # its stdin closed: it is ending
            raise WorkerDied(f"its stdin is closed ({exc})") from None
        return await self._next(deadline - time.time())

    def kill(self) -> None:
        """Ends the process now; its pipes are read to their end, then closed."""
        if self._transport is not None and self._returncode is None:
            try:
                self._transport.kill()
            except ProcessLookupError:
                pass

    async def stop(self, timeout: float = 2.0) -> None:
        """Closes stdin (the worker's loop ends) and waits; kills what lingers.

        Returns once its last lines are logged.
        """
        if self._transport is None:
            return
        if self._stdin is not None:
            self._stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            self.kill()
            try:  # a grandchild holding its stderr open must not hold the stop
                await asyncio.wait_for(asyncio.shield(self._done), timeout)
            except TimeoutError:
                self._transport.close()


# Types orjson writes and json.dumps refuses (or writes otherwise) go to a `default`:
# there is none, so orjson refuses them too, and json.dumps has the last word. (UUIDs
# and plain enums orjson writes where json.dumps raises; no event read from JSON, nor
# one the runtime makes, holds one.)
_EXACT = (
    orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _request_line(event: Any, request_id: str, deadline: float) -> bytes:
    """The invocation as a worker reads it: one JSON line, what json.dumps would write.

    orjson writes a store batch's 0.5 MB of message bodies several times faster. It
    refuses what it would not write exactly (integers past 64 bits, lone surrogates,
    keys that are not strings), and the standard library writes those; but it writes
    NaN and the infinities as null, so a line with a null is written by orjson only
    when the event holds no such float (the events the runtime makes hold none). A line
    orjson wrote starts with `{"exact":true,` (EXACT_LINE in _worker.py): the worker
    reads it with orjson without first searching it for integers orjson would misread.
    """
    request = {"event": event, "request_id": request_id, "deadline": deadline}
    try:
        line: bytes | None = orjson.dumps({"exact": True, **request}, option=_EXACT)
    except TypeError:  # orjson.JSONEncodeError is one
        line = None
    if line is None or (b"null" in line and _holds_nonfinite(event)):
        return json.dumps(request).encode() + b"\n"
    return line


def _holds_nonfinite(value: Any) -> bool:
    """Whether NaN or an infinity is in `value` (what orjson wrote: dicts, lists, tuples)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class FunctionPool:
    """The warm workers of one function; more start while all are busy, up to max_workers.

    max_workers bounds this machine: past it an invocation waits for a worker. The
    function's reserved concurrency bounds the function, as in Lambda: past it an
    invocation is throttled. `busy`, `peak_busy` and `throttled` say what happened.

    Its state belongs to the event loop (local_runtime/eventloop.py): the `*_async`
    methods run there; `invoke`, `prewarm`, `reload` and `close` are the same, for
    other threads, waiting for the loop's answer.
    """

    def __init__(
        self,
        function: Function,
        environ: dict[str, str],
        python_path: Sequence[Path],
        max_workers: int = 4,
    ) -> None:
        self.function = function
        self.environ = self._environment(function, environ, python_path)
        self.max_workers = max_workers
        self.reserved = function.reserved_concurrency
        self.peak_busy = 0
        self.throttled = 0
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._count = 0
        self._generation = 0  # one more at each reload: older workers are not reused
        self._closed = False
        # invocations waiting for a worker, first come first served
        self._waiting: deque[asyncio.Future[Worker | None]] = deque()
        self._stopping: set[asyncio.Task] = set()  # workers being stopped in the background

    @staticmethod
    def _environment(
        function: Function, runtime_values: dict[str, str], python_path: Sequence[Path]
    ) -> dict[str, str]:
        """What Lambda sets, the template's variables on top, nothing else of this shell's."""
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(function.timeout)),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
                "LAMBDA_TASK_ROOT": str(function.code_dir),
                "LOCAL_FUNCTION_ARN": function.arn,
                "_HANDLER": function.handler,
                "PYTHONPATH": os.pathsep.join(str(p) for p in python_path),
                "TZ": "UTC",
                # Powertools (and others) treat this as `sam local`: no X-Ray daemon to reach.
                "AWS_SAM_LOCAL": "true",
                # Only the local endpoint and its placeholder credentials, never an AWS profile.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                **_logging_environment(function),
                **runtime_values,
                **function.environment,
            }
        )
        return env

    @property
    def busy(self) -> int:
        """Invocations running now (their workers starting, or working)."""
        return self._count - len(self._idle)

    # ------------------------------------------------------------ other threads
    def invoke(self, event: Any, request_id: str | None = None) -> Outcome:
        return eventloop.run(self.invoke_async(event, request_id))

    def prewarm(self) -> None:
        """Starts one worker now, so the first request does not pay the cold start."""
        eventloop.run(self.prewarm_async())

    def reload(self, python_path: Sequence[Path] | None = None) -> tuple[int, int]:
        """New workers for new code: idle ones stop now, busy ones when their call ends.

        Returns how many were idle and busy. With `python_path`, new workers get it
        (the function's requirements changed).
        """
        return eventloop.run(self.reload_async(python_path))

    def close(self) -> None:
        """Stops idle workers and kills busy ones (their invocations end as errors)."""
        eventloop.run(self.close_async())

    # ------------------------------------------------------------ on the loop
    async def prewarm_async(self) -> None:
        if self._count or self._closed or self.reserved == 0:
            return
        self._count += 1
        worker = await self._start()
        if worker is not None and worker.generation == self._generation and not self._closed:
            self._offer(worker)
            return
        # it did not start, or the code changed (or the runtime stopped) while it did
        self._count -= 1
        self._wake()
        if worker is not None:
            await worker.stop()

    async def reload_async(self, python_path: Sequence[Path] | None = None) -> tuple[int, int]:
        self._generation += 1
        if python_path is not None:
            self.environ["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
        idle, self._idle = self._idle, []
        self._count -= len(idle)
        busy = len(self._busy)
        for _ in idle:
            self._wake()
        await asyncio.gather(*(worker.stop() for worker in idle))
        if idle:  # it was warm: so it stays, without the first call paying for the import
            self._background(self.prewarm_async())
        return len(idle), busy

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _start(self) -> Worker | None:
        worker = Worker(self.function, dict(self.environ), self._generation)
        try:
            await worker.start()
            await worker.wait_ready()
        except (TimeoutError, WorkerDied, OSError) as exc:
            log.error("%s failed to start: %s", self.function.logical_id, exc)
            worker.kill()
            return None
        return worker

    async def _acquire(self) -> tuple[Worker | None, bool]:
        """An idle worker, or leave to start one (None, True); waits in turn when neither.

        Waiting invocations are served first come, first served: a worker released
        while some wait is handed to the first of them, never taken by a newcomer.
        """
        woken = False  # a waiter woken in its turn may take an idle worker before the rest
        while True:
            if self._closed:
                raise RuntimeError("the runtime is stopping")
            if self._idle and (woken or not self._waiting):
                worker = self._idle.pop()
                self._busy.add(worker)
                self._note_busy()
                return worker, False
            if self.reserved is not None and self._count >= self.reserved:
                self.throttled += 1
                raise Throttled
            if self._count < self.max_workers:
                self._count += 1
                self._note_busy()
                return None, True
            waiter: asyncio.Future[Worker | None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result())  # handed over as the caller gave up
                raise
            if handed is not None:
                return handed, False
            woken = True

    def _wake(self) -> None:
        """Lets the first waiting invocation look again (a worker ended, or one is idle)."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _note_busy(self) -> None:
        self.peak_busy = max(self.peak_busy, self._count - len(self._idle))

    def _release(self, worker: Worker | None, *, dead: bool = False) -> None:
        self._busy.discard(worker)  # type: ignore[arg-type]
        if worker is None or dead:
            self._count -= 1
        elif self._closed or worker.generation != self._generation:
            # the runtime is stopping, or its code changed since it started
            self._count -= 1
            self._background(worker.stop())
        else:
            self._offer(worker)
            return
        self._wake()

    def _offer(self, worker: Worker) -> None:
        """A ready worker goes straight to the first invocation waiting, or is idle."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._busy.add(worker)
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    async def invoke_async(self, event: Any, request_id: str | None = None) -> Outcome:
        request_id = request_id or str(uuid.uuid4())
        try:
            worker, cold = await self._acquire()
        except RuntimeError as exc:
            error = {"errorType": "Runtime.Stopping", "errorMessage": str(exc)}
            return Outcome(request_id, 0.0, error=error)
        except Throttled:
            # Lambda's answer (reason: ReservedFunctionConcurrentInvocationLimitExceeded).
            error = {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}
            return Outcome(request_id, 0.0, error=error)
        started = time.monotonic()
        if worker is None:
            worker = await self._start()
            if worker is None:
                self._release(None)
                return Outcome(
                    request_id,
                    _ms(started),
                    error={
                        "errorType": "Runtime.InitError",
                        "errorMessage": "worker did not start",
                    },
                    cold=True,
                )
            self._busy.add(worker)
        # The timeout counts from the invocation, not from the init phase before it.
        deadline = time.time() + self.function.timeout
        invoked = time.monotonic()
        try:
            answer = await worker.invoke(event, request_id, deadline)
        except TimeoutError:
            worker.kill()
            self._release(worker, dead=True)
            message = f"Task timed out after {self.function.timeout:.2f} seconds"
            return Outcome(
                request_id,
                _ms(invoked),
                error={"errorType": "Sandbox.Timedout", "errorMessage": message},
                cold=cold,
            )
        except (WorkerDied, OSError) as exc:
            worker.kill()
            self._release(worker, dead=True)
            return Outcome(
                request_id,
                _ms(invoked),
                error={"errorType": "Runtime.ExitError", "errorMessage": str(exc)},
                cold=cold,
            )
        self._release(worker)
        if "error" in answer:
            return Outcome(request_id, _ms(invoked), error=answer["error"], cold=cold)
        return Outcome(request_id, _ms(invoked), result=answer.get("result"), cold=cold)

    async def close_async(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        busy = list(self._busy)
        while self._waiting:
            self._wake()
        for worker in busy:
            worker.kill()
        await asyncio.gather(*(worker.stop() for worker in [*idle, *busy]))
        await asyncio.gather(*self._stopping, return_exceptions=True)


def _logging_environment(function: Function) -> dict[str, str]:
    """What Lambda sets from LoggingConfig; _worker.py configures the root logger from it.

    JSON logs have an application log level (INFO unless ApplicationLogLevel says
    otherwise); text logs have none, so the root logger stays at Python's WARNING.
    """
    if function.log_format.upper() != "JSON":
        return {"AWS_LAMBDA_LOG_FORMAT": "Text"}
    return {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": function.log_level or "INFO"}


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)
