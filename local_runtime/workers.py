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

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class Worker:
    """One worker process; used by one invocation at a time (FunctionPool sees to that).

    The invoking thread writes the request to the worker's stdin and reads the answer
    from its stdout itself, with a deadline: no reader thread and queue between them,
    which under load cost a thread hand-off (and the GIL) per invocation.
    """

    def __init__(self, function: Function, environ: dict[str, str], generation: int = 0) -> None:
        self.function = function
        self.generation = generation  # the pool's code generation it imported
        self.process = subprocess.Popen(  # noqa: S603 - our own worker script
            # -S: no site-packages (the runtime's virtualenv); -P: not this folder either
            [sys.executable, "-S", "-P", str(WORKER_SCRIPT)],
            cwd=function.code_dir,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: Ctrl-C reaches the runtime, which stops workers when it is done.
            start_new_session=True,
        )
        self._pending = b""  # answer bytes read past the last full line
        self._log_reader = threading.Thread(target=self._pass_logs, daemon=True)
        self._log_reader.start()
        self.ready = False

    def _pass_logs(self) -> None:
        assert self.process.stderr is not None
        name = self.function.logical_id
        for line in self.process.stderr:
            # errors="replace": a handler printing bytes must not stop its log reader
            text = line.decode("utf-8", "replace").rstrip("\n")
            handler_log.info("%s | %s", name, text)

    def _next(self, timeout: float) -> dict:
        """The worker's next answer line, parsed; TimeoutError, or WorkerDied at its end."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + max(timeout, 0)
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied(f"exited with status {self.process.wait()}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def wait_ready(self) -> None:
        if not self.ready:
            self._next(INIT_TIMEOUT_SECONDS)
            self.ready = True

    def invoke(self, event: Any, request_id: str, deadline: float) -> dict:
        assert self.process.stdin is not None
        request = {"event": event, "request_id": request_id, "deadline": deadline}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        return self._next(deadline - time.time())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self, timeout: float = 2.0) -> None:
        """Closes stdin (the worker's loop ends) and waits; kills what lingers."""
        try:
            if self.process.stdin:
                self.process.stdin.close()
            self.process.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self._log_reader.join(timeout)  # its last lines are logged before stop returns


class FunctionPool:
    """The warm workers of one function; more start while all are busy, up to max_workers.

    max_workers bounds this machine: past it an invocation waits for a worker. The
    function's reserved concurrency bounds the function, as in Lambda: past it an
    invocation is throttled. `busy`, `peak_busy` and `throttled` say what happened.
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
        self._cond = threading.Condition()

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
        with self._cond:
            return self._count - len(self._idle)

    def prewarm(self) -> None:
        """Starts one worker now, so the first request does not pay the cold start."""
        with self._cond:
            if self._count or self._closed or self.reserved == 0:
                return
            self._count += 1
        worker = self._start()
        stale = None
        with self._cond:
            if worker is not None and worker.generation == self._generation:
                self._idle.append(worker)
            else:  # it did not start, or the code changed while it did
                self._count -= 1
                stale = worker
            self._cond.notify()
        if stale is not None:
            stale.stop()

    def reload(self, python_path: Sequence[Path] | None = None) -> tuple[int, int]:
        """New workers for new code: idle ones stop now, busy ones when their call ends.

        Returns how many were idle and busy. With `python_path`, new workers get it
        (the function's requirements changed).
        """
        with self._cond:
            self._generation += 1
            if python_path is not None:
                self.environ["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            busy = len(self._busy)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        if idle:  # it was warm: so it stays, without the first call paying for the import
            threading.Thread(target=self.prewarm, daemon=True).start()
        return len(idle), busy

    def _start(self) -> Worker | None:
        with self._cond:
            generation, environ = self._generation, dict(self.environ)
        worker = Worker(self.function, environ, generation)
        try:
            worker.wait_ready()
        except (TimeoutError, WorkerDied) as exc:
            log.error("%s failed to start: %s", self.function.logical_id, exc)
            worker.kill()
            return None
        return worker

    def _acquire(self) -> tuple[Worker | None, bool]:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the runtime is stopping")
                if self._idle:
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
                self._cond.wait()

    def _note_busy(self) -> None:
        self.peak_busy = max(self.peak_busy, self._count - len(self._idle))

    def _release(self, worker: Worker | None, *, dead: bool = False) -> None:
        retired = None
        with self._cond:
            self._busy.discard(worker)  # type: ignore[arg-type]
            if worker is None or dead:
                self._count -= 1
            elif self._closed:
                self._count -= 1
                worker.stop()
            elif worker.generation != self._generation:  # its code changed since it started
                self._count -= 1
                retired = worker
            else:
                self._idle.append(worker)
            self._cond.notify()
        if retired is not None:
            retired.stop()

    def invoke(self, event: Any, request_id: str | None = None) -> Outcome:
        request_id = request_id or str(uuid.uuid4())
        try:
            worker, cold = self._acquire()
        except RuntimeError as exc:
            error = {"errorType": "Runtime.Stopping", "errorMessage": str(exc)}
            return Outcome(request_id, 0.0, error=error)
        except Throttled:
            # Lambda's answer (reason: ReservedFunctionConcurrentInvocationLimitExceeded).
            error = {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}
            return Outcome(request_id, 0.0, error=error)
        started = time.monotonic()
        if worker is None:
            worker = self._start()
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
            with self._cond:
                self._busy.add(worker)
        # The timeout counts from the invocation, not from the init phase before it.
        deadline = time.time() + self.function.timeout
        invoked = time.monotonic()
        try:
            answer = worker.invoke(event, request_id, deadline)
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

    def close(self) -> None:
        """Stops idle workers and kills busy ones (their invocations end as errors)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.kill()


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
