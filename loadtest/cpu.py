"""CPU per request by process: where a running `make dev` spends its CPU under load.

Requests per second on a shared 2-core machine say as much about the neighbours as
about the stack; the CPU each process spends per acknowledged request barely moves
with contention, and says which process to make cheaper. Read from /proc (utime +
stime of every process, in clock ticks) before and after the load, for the runtime's
process tree (the runtime, its functions' workers, local_queue, moto, the embedded
PostgreSQL's helper) and for the embedded PostgreSQL's own processes, which pg_ctl
detaches from the runtime: the postmaster named in the data folder's postmaster.pid
and its backends.

A process that starts during the load counts from zero. One that ends during it is
counted while it ran only if it is a PostgreSQL backend (the postmaster's reaped
children); a worker that ends (timed out, replaced by a reload) is not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    group: str
    cpu_s: float


# (pid, start time in ticks): a pid reused during the load is another process.
Snapshot = dict[tuple[int, int], Sample]


def _stat(pid: int) -> tuple[int, int, float, float] | None:
    """(parent pid, start time, CPU seconds, of its children it reaped) of a process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = text[text.rindex(")") + 2 :].split()
    ppid, started = int(fields[1]), int(fields[19])
    used = (int(fields[11]) + int(fields[12])) / TICKS
    reaped = (int(fields[13]) + int(fields[14])) / TICKS
    return ppid, started, used, reaped


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _function_name(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return "?"
    for entry in raw.split(b"\0"):
        if entry.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
            return entry.partition(b"=")[2].decode(errors="replace")
    return "?"


def group_of(cmdline: list[str], function_name: str | None = None) -> str:
    """The group a process of the stack belongs to, from its command line."""
    text = " ".join(cmdline)
    if "_worker.py" in text:
        return f"workers {function_name or '?'}"
    if "local_queue" in text:
        return "local_queue"
    if "local_runtime._moto" in text or "moto" in text.split():
        return "moto"
    if "_postgres.py" in text or (cmdline and os.path.basename(cmdline[0]) == "postgres"):
        return "postgres"
    if cmdline and cmdline[0].startswith("postgres:"):  # a backend names itself so
        return "postgres"
    return "other"


def postmaster_pid(state_dir: Path) -> int | None:
    """The embedded server's postmaster, from its data folder; None if it is not there."""
    try:
        return int((state_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def snapshot(runtime_pid: int, postgres_pid: int | None = None) -> Snapshot:
    """CPU seconds so far of every process in the runtime's tree and the postmaster's."""
    stats: dict[int, tuple[int, int, float, float]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: Snapshot = {}
    for root, root_group in ((runtime_pid, "runtime"), (postgres_pid, "postgres")):
        if root is None or root not in stats:
            continue
        pending = [root]
        while pending:
            pid = pending.pop()
            pending.extend(children.get(pid, []))
            _, started, cpu_s, reaped = stats[pid]
            if pid == root:
                group = root_group
                if root_group == "postgres":  # its backends that ended, all PostgreSQL's
                    cpu_s += reaped
            else:
                command = _cmdline(pid)
                name = _function_name(pid) if "_worker.py" in " ".join(command) else None
                group = group_of(command, name)
                if root_group == "postgres":
                    group = "postgres"
            found[(pid, started)] = Sample(group, cpu_s)
    return found


def per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request by group between two snapshots, and their total."""
    spent: dict[str, float] = {}
    for key, sample in after.items():
        earlier = before.get(key)
        used = sample.cpu_s - (earlier.cpu_s if earlier else 0.0)
        spent[sample.group] = spent.get(sample.group, 0.0) + used
    per = {
        group: round(seconds * 1000 / max(requests, 1), 3)
        for group, seconds in sorted(spent.items())
    }
    per["total"] = round(sum(spent.values()) * 1000 / max(requests, 1), 3)
    return per
