"""Worker logs that outlive the cluster, bounded in size.

Each worker (and the zygote, which imports the app) has its stdout and stderr on
``<log_dir>/<name>.log``, opened for appending: the kernel writes every line
straight into the file, so what a process printed is on disk however the
harness ends, SIGKILL included (a relay in the harness would lose what it had
not copied yet). A restarted worker appends to the same file: every incarnation
starts with a header line (:func:`incarnation_header`) that the worker writes
itself, so it names the worker's own pid and always precedes that incarnation's
output.

A watcher thread in the harness bounds each file: one that has grown past
``max_bytes`` is cut in place to its last half (at a line start, one marker line
on top). It looks every :data:`CHECK_INTERVAL_S`, so a file can overshoot by
what the app writes in that time, and lines written during the cut itself (a
few milliseconds) may be lost; a chatty app can never fill the disk.

>>> logs = LogFiles(log_dir=Path("runs/x/workers"))  # doctest: +SKIP
>>> logs.channel("0")      # the file a worker's output goes to  # doctest: +SKIP
PosixPath('runs/x/workers/0.log')
>>> logs.close()           # stops the watcher, bounds every file once more  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Final

DEFAULT_MAX_BYTES: Final = 4 * 1024 * 1024
"""A log is cut to its last half once it grows past this (4 MiB per file)."""
CHECK_INTERVAL_S: Final = 0.5
HEADER_PREFIX: Final = "=== scanproof: worker "


def incarnation_header(index: int, incarnation: int, pid: int) -> str:
    """The first line every worker process writes to its log.

    >>> incarnation_header(2, 3, 4711)[:58]
    '=== scanproof: worker 2, incarnation 3, pid 4711, started '
    """
    started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    return f"{HEADER_PREFIX}{index}, incarnation {incarnation}, pid {pid}, started {started} ===\n"


def open_log(path: str) -> int:
    """An appending write descriptor on log file ``path``; /dev/null when it cannot be
    opened (a worker must never fail on its own log)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


def _trim(path: Path, max_bytes: int, dropped: int) -> int:
    """Cut ``path`` in place to its last half when it is past ``max_bytes``; returns the
    bytes dropped so far (``dropped`` plus this cut's)."""
    try:
        size = path.stat().st_size
        if size <= max_bytes:
            return dropped
        with path.open("rb") as src:
            src.seek(max(0, size - max_bytes // 2))
            tail = src.read()
        cut = tail.find(b"\n")
        if 0 <= cut < len(tail) - 1:
            tail = tail[cut + 1 :]
        dropped += size - len(tail)
        marker = (
            f"[scanproof: {dropped} bytes of older output dropped; this log keeps "
            f"at most {max_bytes // (1024 * 1024) or 1} MiB]\n"
        ).encode()
        # in place: the writers' descriptors stay valid (O_APPEND writes land at the
        # new end); what they write between the read and the truncate is lost
        os.truncate(path, 0)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, marker + tail)
        finally:
            os.close(fd)
    except OSError:
        pass  # a full disk or a vanished file loses log lines, never the run
    return dropped


class LogFiles:
    """Bounded append-only log files in ``log_dir``, one per process name; see the module."""

    def __init__(self, *, log_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1024:
            raise ValueError(f"log max_bytes {max_bytes}: must be at least 1024")
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="scanproof-logs", daemon=True)
        self._thread.start()

    def path(self, name: str) -> Path:
        """The log file of ``name`` ("0", "zygote", ...)."""
        return self.log_dir / f"{name}.log"

    def channel(self, name: str) -> Path:
        """The file a process named ``name`` appends its output to (created if new)."""
        path = self.path(name)
        with self._lock:
            self._dropped.setdefault(name, 0)
        path.touch(exist_ok=True)
        return path

    def tail(self, name: str, lines: int = 15) -> str:
        """The last ``lines`` lines of ``name``'s log."""
        try:
            text = self.path(name).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def close(self) -> None:
        """Stop the watcher and bound every file once more; safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(5.0)
        self._bound_all()

    def _bound_all(self) -> None:
        with self._lock:
            for name, dropped in list(self._dropped.items()):
                self._dropped[name] = _trim(self.path(name), self.max_bytes, dropped)

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_S):
            self._bound_all()
