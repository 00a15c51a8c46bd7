"""Queue faults: drop a job queue's messages, and name exactly the scans they carried.

A job-queue service (Celery, RQ...) keeps its broker's messages under keys that belong
to no single scan: the queue (Celery: ``celery``) and the in-flight messages (Celery:
``unacked``, ``unacked_index``). The contract names them under ``[keys] queue`` and
``[keys] inflight``. ``drop_queued`` and ``drop_inflight`` delete those keys whole;
before a key goes, its messages are read *in the same transaction* (WATCH, then
MULTI: read, DEL, EXEC), so what is read is exactly what is deleted.

Which scans lost their job is decided from the messages and the ids the service
issued in this run (:class:`IssuedScans`, read from the run's history shards as the
driver writes them): a scan is affected when its id appears in a dropped message's
bytes as a whole token (not inside a longer word). The fault row lists exactly those
scans; the checkers excuse only them, and only when the contract allows lost state.

Key patterns may contain ``{run}``, this run's id (the workers' ``SCANPROOF_RUN_ID``):
:func:`bind_run` fills it in, so a fault never touches another run's queue on a shared
Redis.

>>> bind_run(("celery:{run}", "unacked"), "r1")
('celery:r1', 'unacked')
>>> mentioned([b'{"id": "ab12"}', b'{"id": "ab123"}'], {"ab12", "zz"})
('ab12',)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import redis

from harness.errors import InfrastructureError, UsageError

#: The contract's ``[keys]`` class each queue fault drops.
QUEUE_FAULT_CLASSES: Final = {"drop_queued": "queue", "drop_inflight": "inflight"}
RUN_PLACEHOLDER: Final = "{run}"
_OTHER_PLACEHOLDERS: Final = ("{scan_id}", "{tenant}", "{user_id}", "{cache_key}", "{any}")
_SETTLE_S: Final = 10.0  # how long a drop waits for the creates it raced to be recorded


def bind_run(patterns: Iterable[str], run_id: str | None) -> tuple[str, ...]:
    """``patterns`` with ``{run}`` replaced by ``run_id``; UsageError when one has
    ``{run}`` but there is no run id."""
    bound = []
    for pattern in patterns:
        if RUN_PLACEHOLDER in pattern:
            if not run_id:
                raise UsageError(
                    f"key pattern {pattern!r} names {{run}} but this cluster has no run id; "
                    "pass run_id= to the Nemesis (scanproof run does)"
                )
            pattern = pattern.replace(RUN_PLACEHOLDER, run_id)
        bound.append(pattern)
    return tuple(bound)


def glob_of(pattern: str) -> str:
    """The SCAN MATCH glob of a (run-bound) key pattern: every placeholder is ``*``.

    >>> glob_of("jobs:{any}:queue")
    'jobs:*:queue'
    """
    for placeholder in _OTHER_PLACEHOLDERS:
        pattern = pattern.replace(placeholder, "*")
    return pattern


def _token(scan_id: str) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![\w-])" + re.escape(scan_id.encode()) + rb"(?![\w-])")


def mentioned(blobs: Iterable[bytes], scan_ids: Iterable[str]) -> tuple[str, ...]:
    """The ids of ``scan_ids`` that some blob contains as a whole token, sorted."""
    data = list(blobs)
    found = set()
    for scan_id in scan_ids:
        if not scan_id:
            continue
        needle = scan_id.encode()
        if any(needle in blob for blob in data):  # cheap test first, then the boundaries
            rx = _token(scan_id)
            if any(rx.search(blob) for blob in data):
                found.add(scan_id)
    return tuple(sorted(found))


class IssuedScans:
    """The scan ids the service issued so far in a run, from the run's history shards.

    Every driver (the scripted one, locust's users) records a create's answer, with
    the issued id, in its shard (``<run dir>/*.jsonl``) as it arrives; this reads the
    shards' new lines on each :meth:`refresh`. :meth:`settle` also waits for the
    creates still in flight at a moment, whose messages may already be queued.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}
        self._rest: dict[Path, bytes] = {}
        self._open: dict[str, int] = {}  # discover op id -> its invoke time (ns)
        self.ids: set[str] = set()

    def refresh(self) -> frozenset[str]:
        """Read what the shards gained since the last call; every issued id so far."""
        for path in sorted(self.directory.glob("*.jsonl")):
            try:
                with path.open("rb") as shard:
                    shard.seek(self._offsets.get(path, 0))
                    data = self._rest.pop(path, b"") + shard.read()
                    self._offsets[path] = shard.tell()
            except OSError:
                continue
            lines = data.split(b"\n")
            self._rest[path] = lines.pop()  # an unfinished last line: read it next time
            for line in lines:
                self._take(line)
        return frozenset(self.ids)

    def _take(self, line: bytes) -> None:
        try:
            event: Any = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("e") == "invoke" and event.get("kind") == "discover":
            self._open[str(event.get("op"))] = int(event.get("t_invoke_ns") or 0)
        elif event.get("e") == "complete":
            self._open.pop(str(event.get("op")), None)
            if event.get("scan_id"):
                self.ids.add(str(event["scan_id"]))

    def settle(self, before_ns: int, timeout: float = _SETTLE_S) -> frozenset[str]:
        """Every issued id, once each create sent before ``before_ns`` has its answer
        recorded (or ``timeout`` seconds have passed: its process may be gone)."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.refresh()
            if not any(t < before_ns for t in self._open.values()):
                return ids
            if time.monotonic() > deadline:
                return ids
            time.sleep(0.02)


@dataclass(frozen=True, slots=True)
class Dropped:
    """What a queue fault removed: the keys, their messages' bytes, when."""

    keys: tuple[str, ...]
    messages: tuple[bytes, ...]
    at_ns: int


def _flatten(value: Any) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, str):
        return [value.encode()]
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in (*_flatten(k), *_flatten(v))]
    if isinstance(value, list | tuple | set):
        return [b for item in value for b in _flatten(item)]
    return [str(value).encode()]


def _messages(kind: str, value: Any) -> list[bytes]:
    """One blob per message: a list's items, a hash's fields with their values, a
    set's or sorted set's members, a stream's entries, a string whole."""
    if kind == "hash":
        return [b" ".join([*_flatten(k), *_flatten(v)]) for k, v in value.items()]
    if kind == "stream":
        return [b" ".join(_flatten(entry)) for entry in value]
    return _flatten(value)


def _read(pipe: Any, kind: str, key: str) -> bool:
    """Queue the read of ``key``'s messages on a MULTI pipeline; False: no such type."""
    if kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1)
    elif kind == "string":
        pipe.get(key)
    elif kind == "stream":
        pipe.xrange(key)
    else:
        return False
    return True


def drop(client: redis.Redis, globs: Sequence[str]) -> Dropped:
    """Delete every key matching ``globs``, each read and deleted in one transaction."""
    try:
        keys = sorted({_text(k) for g in globs for k in client.scan_iter(match=g, count=500)})
        removed: list[str] = []
        messages: list[bytes] = []
        for key in keys:
            with client.pipeline(transaction=True) as tx:
                pipe: Any = tx  # redis-py's pipeline is untyped
                while True:
                    try:
                        pipe.watch(key)
                        kind = _text(pipe.type(key))
                        pipe.multi()
                        reads = _read(pipe, kind, key)
                        pipe.delete(key)
                        answers = pipe.execute()
                        break
                    except redis.WatchError:
                        continue  # the service changed it meanwhile: read it again
            if answers[-1]:
                removed.append(key)
                if reads:
                    messages.extend(_messages(kind, answers[0]))
        return Dropped(tuple(removed), tuple(messages), time.monotonic_ns())
    except redis.RedisError as exc:
        raise InfrastructureError(f"dropping queue keys {list(globs)} failed: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
