"""What a worker reads is the event the runtime wrote, exactly, on the fast path or not."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import local_runtime
from local_runtime import workers

_spec = importlib.util.spec_from_file_location(
    "_worker_under_test", Path(local_runtime.__file__).with_name("_worker.py")
)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_a_request_reads_back_as_the_runtime_wrote_it(value):
    line = json.dumps({"event": value, "request_id": "r", "deadline": 1.0}).encode() + b"\n"
    read = worker._read_request(line)["event"]
    assert json.dumps(read) == json.dumps(value)  # ints past 64 bits stay ints, floats exact


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30, -(10**40)])
def test_an_integer_past_64_bits_is_read_exact_though_orjson_would_read_a_float(number):
    # orjson reads it as a float without an error: the worker must see the digits first
    line = json.dumps({"event": {"n": number, "id": "12345"}, "request_id": "r"}).encode()
    assert worker._read_request(line)["event"] == {"n": number, "id": "12345"}
    assert type(worker._read_request(line)["event"]["n"]) is int


def test_values_orjson_refuses_are_read_by_the_standard_library():
    line = json.dumps({"event": {"x": math.nan, "s": "\ud800", "big": 10**30}}).encode()
    event = worker._read_request(line)["event"]
    assert math.isnan(event["x"]) and event["s"] == "\ud800" and event["big"] == 10**30
    assert worker.orjson is not None  # the fast path is there to be taken in these tests


any_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and the infinities too: Python's JSON reads and writes them
    | st.text(st.characters(codec=None, exclude_categories=())),  # lone surrogates too
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(any_json_values)
def test_the_runtime_writes_any_event_as_the_standard_library_would_deliver_it(value):
    line = workers._request_line(value, "r", 1.0)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    read = worker._read_request(line)
    assert (read["request_id"], read["deadline"]) == ("r", 1.0)
    assert json.dumps(read["event"]) == json.dumps(json.loads(json.dumps(value)))


def test_the_runtime_writes_a_queues_event_with_orjson():
    # The common case, a batch of SQS records (texts; a null in a body is no NaN), takes
    # the fast path: what orjson wrote, not json.dumps's ASCII escapes.
    record = {"messageId": "m", "body": '{"a": null, "b": "é"}', "attributes": {}}
    line = workers._request_line({"Records": [record]}, "r", 1.0)
    request = {"exact": True, "event": {"Records": [record]}, "request_id": "r", "deadline": 1.0}
    assert line == orjson.dumps(request) + b"\n"


def test_a_line_the_runtime_wrote_with_orjson_is_read_without_the_search_for_long_digits(
    monkeypatch,
):
    # orjson refused to write any integer it could not read back: the worker need not
    # look for one (that search cost as much as the read). A line json.dumps wrote is
    # still searched.
    searched: list[bytes] = []
    monkeypatch.setattr(worker, "_has_long_digits", lambda line: searched.append(line) or False)
    event = {"Records": [{"body": "x" * 100, "attributes": {"SentTimestamp": "1" * 20}}]}

    fast = workers._request_line(event, "r", 1.0)
    slow = workers._request_line({**event, "n": math.nan}, "r", 1.0)

    assert worker._read_request(fast)["event"] == event
    assert math.isnan(worker._read_request(slow)["event"]["n"])
    assert searched == [slow]


def test_a_handlers_output_reaches_the_runtime_whole_and_before_its_answer(tmp_path):
    # Given a handler that prints a line in two pieces, then text with no newline
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n"
        "    print('half', end='')\n"
        "    print(' and half')\n"
        "    print('no newline yet', end='')\n"
        "    return 'done'\n"
    )
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "printer",
        "LOCAL_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:printer",
        "_HANDLER": "app.handler",
        "PYTHONPATH": str(tmp_path),
    }
    process = subprocess.Popen(  # noqa: S603 - our own worker script
        [sys.executable, "-P", str(workers.WORKER_SCRIPT)],
        cwd=tmp_path,
        env=environ,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert json.loads(process.stdout.readline())["ready"]
        # When it is invoked
        request = {"event": {}, "request_id": "r1", "deadline": time.time() + 30}
        process.stdin.write(json.dumps(request).encode() + b"\n")
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())

        # Then its output is in the log pipe by the time the answer is: whole lines, and
        # the unfinished one too (the worker flushes before it answers)
        assert answer == {"result": "done"}
        output = b""
        while select.select([process.stderr], [], [], 0)[0]:
            chunk = os.read(process.stderr.fileno(), 1 << 16)
            if not chunk:
                break
            output += chunk
        assert output == b"half and half\nno newline yet"
    finally:
        process.kill()
        process.wait()
