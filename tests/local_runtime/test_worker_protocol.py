"""What a worker reads is the event the runtime wrote, exactly, on the fast path or not."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import local_runtime

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


def test_values_orjson_refuses_are_read_by_the_standard_library():
    line = json.dumps({"event": {"x": math.nan, "s": "\ud800", "big": 10**30}}).encode()
    event = worker._read_request(line)["event"]
    assert math.isnan(event["x"]) and event["s"] == "\ud800" and event["big"] == 10**30
    assert worker.orjson is not None  # the fast path is there to be taken in these tests
