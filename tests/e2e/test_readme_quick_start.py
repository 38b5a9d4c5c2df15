"""The README's quick start, run as a newcomer runs it: each line of its block, in order.

The block is read from README.md, so the README cannot promise what Sluice does not do.
A newcomer copies each line into a shell, replaces the `API=` value with the URL `make
dev` printed and each `<name>` with the value an earlier answer (or the mail) gave. The
comment under a curl line is the answer it promises: its status, then a JSON object
whose fields must be in the answer — `"<name>"` takes the value (a newcomer's next
`<name>`), `"..."` any value, anything else exactly that.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from local_runtime.runtime import Runtime
from tests.e2e.conftest import REPO_ROOT, running_stack
from tests.e2e.test_local_stack import _run
from tests.support import scratch_database, wait_for

PLACEHOLDER = re.compile(r"<(\w+)>")


def quick_start_block(readme: str) -> list[str]:
    """The first shell block after the quick start's heading, continuation lines joined."""
    section = readme.split("\n## A first event, from sign-up\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the quick start has no ```sh block"
    return block.group(1).replace("\\\n", " ").splitlines()


def steps(readme: str) -> list[tuple[str, str | None]]:
    """(command, the answer promised in the comment line below it, if any)."""
    lines = [line for line in quick_start_block(readme) if line.strip()]
    out: list[tuple[str, str | None]] = []
    for line in lines:
        if line.startswith("#"):
            assert out and out[-1][1] is None, f"an answer with no command: {line}"
            out[-1] = (out[-1][0], line.lstrip("# "))
        else:
            out.append((line.split("  #")[0].strip(), None))
    return out


@pytest.fixture(scope="module")
def dev(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """make dev on a database of its own: no account registered before the newcomer's."""
    with scratch_database(postgres_server_url, "quick_start") as database_url:
        with running_stack(database_url, tmp_path_factory.mktemp("quick_start")) as runtime:
            yield runtime


class Newcomer:
    """A shell, the values read so far, and the codes already typed."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.values: dict[str, str] = {}
        self.codes_used: set[str] = set()

    def fill(self, command: str) -> str:
        def value(match: re.Match) -> str:
            assert match.group(1) in self.values, f"nothing has given <{match.group(1)}> yet"
            return self.values[match.group(1)]

        return PLACEHOLDER.sub(value, command)

    def read_mail(self, command: str) -> None:
        """`make mail`, again until a code not typed before is in it (mail is sent async)."""

        def new_code() -> str | None:
            done = _run(command, LOCAL_STATE_DIR=str(self.runtime.state_dir))
            assert done.returncode == 0, done.stdout + done.stderr
            codes = re.findall(r"^Subject: .*?\b(\d{6})\b", done.stdout, re.MULTILINE)
            fresh = [c for c in codes if c not in self.codes_used]
            return fresh[-1] if fresh else None

        code = wait_for(new_code, timeout=60)
        self.codes_used.add(code)
        self.values["code"] = code

    def curl(self, command: str, promised: str) -> None:
        status_text, _, fields_text = promised.partition(" ")
        status = int(status_text)
        fields = json.loads(fields_text) if fields_text else {}
        typed = set(PLACEHOLDER.findall(command))
        shell = self.fill(command) + " -w '\\n%{http_code}'"
        reads = " -d " not in command and "-X " not in command

        def answer() -> tuple[int, dict]:
            done = subprocess.run(  # noqa: S603 - the README's own curl line
                ["/bin/sh", "-c", shell],
                env={"API": self.runtime.api_url, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            body, _, code = done.stdout.rpartition("\n")
            return int(code), json.loads(body) if body.strip() else {}

        def kept() -> tuple[int, dict] | None:
            got = answer()
            return got if got[0] == status and self._matches(fields, got[1], typed) else None

        # A read may answer "queued" first; it is asked again until it keeps its promise.
        got = wait_for(kept, timeout=60) if reads else answer()
        assert got and got[0] == status, f"{command}\n-> {got}"
        assert self._matches(fields, got[1], typed), f"{command}\n-> {got[1]}\npromised {fields}"
        self._take(fields, got[1])

    def _matches(self, promised: dict, body: dict, typed: set[str]) -> bool:
        for key, want in promised.items():
            if key not in body:
                return False
            if isinstance(want, dict):
                if not isinstance(body[key], dict) or not self._matches(want, body[key], typed):
                    return False
            elif isinstance(want, str) and (name := PLACEHOLDER.fullmatch(want)):
                # a value the command itself used must come back the same
                if name.group(1) in typed and body[key] != self.values[name.group(1)]:
                    return False
            elif want != "..." and body[key] != want:
                return False
        return True

    def _take(self, promised: dict, body: dict) -> None:
        for key, want in promised.items():
            if isinstance(want, dict):
                self._take(want, body[key])
            elif isinstance(want, str) and (name := PLACEHOLDER.fullmatch(want)):
                self.values[name.group(1)] = body[key]


def test_the_readme_quick_start_works_as_written(dev):
    # Given make dev running and the README's quick start
    readme = (REPO_ROOT / "README.md").read_text()
    newcomer = Newcomer(dev)
    ran = []

    # When a newcomer runs each line of it
    for command, promised in steps(readme):
        if command.startswith("API="):
            # the URL make dev prints by default; this one listens on a port of its own
            assert command == "API=http://127.0.0.1:3000", command
        elif command.startswith("make "):
            newcomer.read_mail(command)
        else:
            assert command.startswith("curl "), f"a line a newcomer cannot run: {command}"
            assert promised, f"no answer promised for {command}"
            newcomer.curl(command, promised)
        ran.append(command.split()[0])

    # Then every answer was the one promised, from sign-up to the stored event
    assert ran.count("curl") >= 8, ran
    assert "event_id" in newcomer.values
