"""CPU per request by process, as `make loadtest ARGS="--wrk"` reports it: read from /proc."""

import os
import subprocess
import sys
from pathlib import Path

from loadtest import cpu

# Spends CPU until its own process time reaches the figure given, says so, then waits.
BURNER = """
import sys, time
while time.process_time() < float(sys.argv[1]):
    pass
print("burnt", flush=True)
sys.stdin.read()
"""


def test_each_process_of_the_stack_is_grouped_by_what_it_runs():
    worker = ["/venv/bin/python", "-S", "-P", "/repo/local_runtime/_worker.py"]
    assert cpu.group_of(worker, "sluice-ingest") == "workers sluice-ingest"
    assert cpu.group_of(["/venv/bin/python", "-m", "local_queue", "--port", "0"]) == "local_queue"
    assert cpu.group_of(["/venv/bin/python", "-m", "local_runtime._moto", "h", "0"]) == "moto"
    helper = ["/venv/bin/python", "-P", "/repo/local_runtime/_postgres.py", "/d/pgdata"]
    assert cpu.group_of(helper) == "postgres"
    assert cpu.group_of(["/lib/pgserver/bin/postgres", "-D", "/d/pgdata"]) == "postgres"
    assert cpu.group_of(["postgres: checkpointer "]) == "postgres"
    assert cpu.group_of(["/usr/bin/pip", "install"]) == "other"


def test_the_cpu_a_child_spends_during_the_load_is_counted_per_request_in_its_group():
    # Given a child of this process (the "runtime") that looks like local_queue
    child = subprocess.Popen(  # noqa: S603 - this interpreter
        [sys.executable, "-c", BURNER, "0.3", "local_queue"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = cpu.snapshot(os.getpid())
        assert {s.group for s in before.values()} >= {"runtime", "local_queue"}

        # When it spends 0.3 s of CPU between the two snapshots, over 100 requests
        assert child.stdout is not None and child.stdout.readline() == "burnt\n"
        after = cpu.snapshot(os.getpid())
        per = cpu.per_request(before, after, 100)
    finally:
        child.kill()
        child.wait()

    # Then its group shows about 3 ms per request (less what it spent before `before`)
    assert 2.0 <= per["local_queue"] <= 3.2
    assert per["total"] >= per["local_queue"] + per["runtime"] - 0.01


def test_the_cpu_of_postgres_backends_that_ended_during_the_load_is_counted():
    # Given this process as the postmaster, whose backend burns 0.3 s and exits
    before = cpu.snapshot(-1, os.getpid())
    backend = subprocess.Popen(  # noqa: S603 - this interpreter
        [sys.executable, "-c", BURNER, "0.3"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    backend.communicate(timeout=60)  # reaped: its CPU is now the postmaster's children's

    per = cpu.per_request(before, cpu.snapshot(-1, os.getpid()), 100)

    assert per["postgres"] >= 2.9  # 0.3 s over 100 requests, and this process's own


def test_a_process_started_during_the_load_counts_from_zero_and_a_reused_pid_is_another():
    before = {(10, 1): cpu.Sample("runtime", 5.0), (11, 2): cpu.Sample("moto", 1.0)}
    after = {
        (10, 1): cpu.Sample("runtime", 6.0),
        (11, 9): cpu.Sample("workers f", 0.5),  # pid 11 again, another process
    }
    assert cpu.per_request(before, after, 1000) == {
        "runtime": 1.0,
        "workers f": 0.5,
        "total": 1.5,
    }


def test_the_embedded_servers_postmaster_is_read_from_its_data_folder(tmp_path: Path):
    assert cpu.postmaster_pid(tmp_path) is None
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "postmaster.pid").write_text("4242\n/d/pgdata\n1700000000\n5432\n")
    assert cpu.postmaster_pid(tmp_path) == 4242
