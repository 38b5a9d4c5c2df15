"""The runtime's one event loop (uvloop), in a thread of its own, for the whole process.

The API server (uvicorn) and every function's workers (their pipes) live on it: a
request is read, handed to an idle worker's stdin and answered when the worker's
answer arrives, with no thread per connection, per request or per worker. Code in
other threads (the SQS pollers, schedules, `make invoke`, the code watcher) reaches it
through `run`, which waits for the result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """The loop, started on first use; it runs until the process ends."""
    global _loop, _thread
    with _lock:
        if _loop is None:
            new = uvloop.new_event_loop()
            started = threading.Event()
            new.call_soon(started.set)
            _thread = threading.Thread(
                target=new.run_forever, name="local_runtime loop", daemon=True
            )
            _thread.start()
            started.wait()
            _loop = new
        return _loop


def in_loop() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run(coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Runs a coroutine on the loop from another thread and returns its result."""
    if in_loop():
        coroutine.close()
        raise RuntimeError("run() would wait for the loop from the loop's own thread")
    return asyncio.run_coroutine_threadsafe(coroutine, loop()).result(timeout)
