"""Writing history events: the stdlib-only half of :mod:`harness.history.tables`.

An :class:`EventRecorder` turns requests and faults into the schema's event
dicts (see :mod:`harness.history.schema`) and hands each one, as a JSON line, to a sink.
:class:`HistoryWriter` is the recorder whose sink is a shard file. This module
imports nothing but the standard library, so a process that must not load
pandas (a locust worker under gevent) records with exactly the same code:

>>> lines: list[str] = []
>>> rec = EventRecorder(proc="locust-w0", sink=lines.append)
>>> op = rec.invoke(kind="status", tenant="alice", scan_id="scan_1")
>>> rec.complete(op, Completion(outcome="ok", http_status=200))
>>> op, len(lines)
('locust-w0:0', 2)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import UsageError
from harness.history import schema as S


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """How one request ended. Absent numbers are -1, absent strings empty."""

    outcome: S.Outcome
    worker: int = -1
    http_status: int = 0
    body_status: str = ""  # the canonical state (schema: body_status)
    raw_status: str = ""  # what the answer said at the status path
    completed: int = -1
    total: int = -1
    found: int = -1
    has_progress: bool = False
    items: int = -1  # entries in the answer's items list, -1 when it had none
    body_scan_ids: str = ""
    body_user_ids: str = ""
    scan_id: str = ""  # discover: the id the service issued
    error: str = ""


_COMPLETION_FIELDS = tuple(f.name for f in dataclasses.fields(Completion))
# json.dumps builds a new encoder on every call that passes separators; one will do.
_encode = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRecord:
    """One nemesis action, recorded with proof that it landed."""

    fault_id: str
    fault: str
    target: str
    t_start_ns: int
    t_end_ns: int
    landed: bool
    evidence: str
    params: str = "{}"
    destructive: bool = False
    scope: str = "listed"  # "all" or "listed"
    affected_scans: str = ""
    affected_tenants: str = ""


def check_proc(proc: str) -> str:
    """``proc`` if it can name a shard and prefix op ids, else a UsageError."""
    if not proc or any(c in proc for c in "/\\:"):
        raise UsageError(f"proc {proc!r}: must be non-empty without '/', '\\' or ':'")
    return proc


class EventRecorder:
    """Builds one process's events and passes each, as one JSON line, to ``sink``.

    Op ids are ``"<proc>:<seq>"``, so they are unique across processes whose
    ``proc`` names are. Thread-safe: the sequence and the sink share one lock.
    """

    def __init__(self, *, proc: str, sink: Callable[[str], object]) -> None:
        self.proc = check_proc(proc)
        self._sink = sink
        self._lock = threading.Lock()
        self._seq = itertools.count()

    def _write(self, event: dict[str, Any]) -> None:
        event[S.FORMAT] = S.HISTORY_FORMAT
        line = _encode(event) + "\n"
        with self._lock:
            self._sink(line)

    def invoke(
        self,
        *,
        kind: S.Kind,
        tenant: str,
        scan_id: str = "",
        filters: str = "",
        pinned_worker: int = -1,
    ) -> str:
        """Record that a request is about to be sent; returns the op id."""
        op_id = f"{self.proc}:{next(self._seq)}"
        self._write(
            {
                S.EVENT: S.EV_INVOKE,
                S.OP: op_id,
                S.PROC: self.proc,
                S.KIND: kind,
                S.TENANT: tenant,
                S.SCAN_ID: scan_id,
                S.FILTERS: filters,
                S.PINNED_WORKER: pinned_worker,
                S.T_INVOKE: time.monotonic_ns(),
            }
        )
        return op_id

    def complete(self, op_id: str, completion: Completion) -> None:
        """Record how the request ``op_id`` ended."""
        # asdict() deep-copies recursively; a flat read of the fields is ~5x cheaper
        event = {name: getattr(completion, name) for name in _COMPLETION_FIELDS}
        event[S.EVENT] = S.EV_COMPLETE
        event[S.OP] = op_id
        event[S.T_COMPLETE] = time.monotonic_ns()
        self._write(event)

    def fault(self, record: FaultRecord) -> None:
        """Record one nemesis action."""
        event = dataclasses.asdict(record)
        event[S.EVENT] = S.EV_FAULT
        self._write(event)


class HistoryWriter(EventRecorder):
    """Append-only JSONL shard ``<directory>/<proc>.jsonl`` for one recording process.

    Every line goes to the kernel as it is written (one ``write`` to an
    ``O_APPEND`` descriptor, no user-space buffer), so it survives a SIGKILL of
    this process. ``invoke`` is written before the request is sent, so an op
    whose process died still appears.
    """

    def __init__(self, directory: Path, *, proc: str) -> None:
        check_proc(proc)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{proc}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        super().__init__(proc=proc, sink=self._append)

    def _append(self, line: str) -> None:
        data = line.encode()
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (a full disk, a signal): finish it
            data = data[written:]
            written = os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
