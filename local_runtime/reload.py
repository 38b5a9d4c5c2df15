"""Edited code is picked up: the functions' folders are watched, a change replaces workers.

`sam local` starts a fresh container per call, so it always runs the files as they
are; a warm worker here would keep the modules it imported. The watcher polls the
files' sizes and modification times (the standard library's os.scandir, twice a
second: Sluice's folders are a few hundred files, a few milliseconds a pass) and
calls back with the files that changed, added or went.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger("local_runtime")

POLL_SECONDS = 0.5
_SKIPPED = ("__pycache__", ".git", ".aws-sam", "node_modules")

Snapshot = dict[str, tuple[int, int]]  # path -> (size, mtime_ns)


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """Every file under the folders (and the files) given, with its size and mtime."""
    found: Snapshot = {}
    for path in paths:
        if path.is_file():
            stat = path.stat()
            found[str(path)] = (stat.st_size, stat.st_mtime_ns)
        elif path.is_dir():
            _scan(str(path), found)
    return found


def _scan(folder: str, found: Snapshot) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # gone while scanned: the next pass sees it missing
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIPPED and not entry.name.startswith("."):
                    _scan(entry.path, found)
            elif entry.is_file():
                stat = entry.stat()
                found[entry.path] = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            continue


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


class CodeWatcher:
    """Calls `on_change(names, changed_files)` when files under the names' paths change.

    Names whose changed files are the same come in one call (every function of a
    layer that changed), so the log has one line for one edit.
    """

    def __init__(
        self,
        watched: dict[str, tuple[Path, ...]],
        on_change: Callable[[list[str], list[str]], None],
        interval: float = POLL_SECONDS,
    ) -> None:
        self.watched = watched
        self.on_change = on_change
        self.interval = interval
        self._stop = threading.Event()
        # Each folder once, however many functions share it (Sluice's layer: all of them).
        self._paths = sorted({p for paths in watched.values() for p in paths})
        self._state = {path: snapshot([path]) for path in self._paths}
        self._thread = threading.Thread(target=self._run, name="code-watcher", daemon=True)

    def start(self) -> CodeWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def check(self) -> None:
        files_by_path = {}
        for path in self._paths:
            now = snapshot([path])
            files = changed(self._state[path], now)
            self._state[path] = now
            if files:
                files_by_path[path] = files
        if not files_by_path:
            return
        names_by_files: dict[tuple[str, ...], list[str]] = {}
        for name, paths in self.watched.items():
            files = tuple(sorted({f for p in paths for f in files_by_path.get(p, [])}))
            if files:
                names_by_files.setdefault(files, []).append(name)
        for files, names in names_by_files.items():
            try:
                self.on_change(names, list(files))
            except Exception:  # a failed reload must not stop the watching
                log.exception("reloading %s failed", ", ".join(names))
