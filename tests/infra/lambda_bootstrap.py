"""Invokes one built function the way Lambda's Python runtime does, with nothing else on the path.

Run by tests/infra/test_artifact.py as `python -I -S -B lambda_bootstrap.py REQUEST.json`:
-I ignores PYTHON* variables, the user's site-packages and this script's folder, -S
skips site-packages altogether, so only the standard library is importable until the
folders named in the request are put on sys.path, in Lambda's order (the function's
own folder, then the layer). Standard library only: this file is not the code under test.

Writes RESULT.json: the handler's answer or the traceback Lambda would report, and
every imported module that came from anywhere but those folders and the stdlib.
"""

import importlib
import importlib.util
import json
import sys
import sysconfig
import time
import traceback
from pathlib import Path


class LambdaContext:
    def __init__(self, request: dict) -> None:
        self.function_name = request["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = request["memory_mb"]
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"
        self._deadline = time.monotonic() + request["timeout_seconds"]

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def foreign_modules(allowed: list[Path]) -> list[str]:
    roots = [p.resolve() for p in allowed]
    roots += [Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")]
    found = []
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve() == Path(__file__).resolve():
            continue  # this file (as __main__, and __mp_main__ once multiprocessing loads)
        if origin and not any(Path(origin).resolve().is_relative_to(r) for r in roots):
            found.append(f"{name} from {origin}")
    return sorted(found)


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    path = [str(Path(p)) for p in request["path"]]
    sys.path[:0] = path
    result: dict = {"sys_path": sys.path}
    try:
        module_name, function_name = request["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
        event = json.loads(Path(request["event_file"]).read_text())
        result["response"] = handler(event, LambdaContext(request))
    except BaseException:  # reported to the test, as Lambda reports it
        result["error"] = traceback.format_exc()
    result["foreign_modules"] = foreign_modules([Path(p) for p in path])
    result["importable"] = {
        name: importlib.util.find_spec(name) is not None for name in request["probe_modules"]
    }
    Path(request["result_file"]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
