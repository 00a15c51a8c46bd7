"""A run's history as Jepsen-style operations in EDN, one map per line.

Each scanproof op becomes an ``:invoke`` when the request was sent and its completion
when it ended: ``:ok`` (it happened), ``:fail`` (it certainly did not) or ``:info``
(unknown: a timeout, a lost connection, or no completion recorded). ``:process`` is
a Jepsen logical process, an integer that has at most one operation outstanding; a
process whose op ended ``:info`` is never used again (Jepsen's crashed process).
Faults are ``:info`` operations of ``:process :nemesis`` (``:f :start`` and ``:f
:stop``). ``:time`` is nanoseconds since the run's t0; ``:index`` counts the lines.
The full mapping is in docs/export.md.

>>> import pandas as pd
>>> from harness.history import schema as S
>>> from harness.history.tables import History
>>> op = {c: "" for c in S.OP_COLUMNS} | {
...     S.OP: "d:0", S.PROC: "d", S.KIND: "status", S.TENANT: "alice", S.SCAN_ID: "s1",
...     S.T_INVOKE: 1_000, S.T_COMPLETE: 5_000, S.OUTCOME: "ok", S.WORKER: 2,
...     S.HTTP_STATUS: 200, S.BODY_STATUS: "scanning", S.COMPLETED: 3, S.TOTAL: 14,
...     S.HAS_PROGRESS: True, S.PINNED_WORKER: -1, S.FOUND: -1, S.ITEMS: -1}
>>> h = History(ops=pd.DataFrame([op]), faults=pd.DataFrame(columns=list(S.FAULT_COLUMNS)))
>>> for line in edn_lines(h, t0_ns=0):  # doctest: +ELLIPSIS
...     head, value = line.split(", :value ")
...     print(head + ",")
...     print("  :value", value)
{:index 0, :type :invoke, :process 0, :time 1000, :f :status,
  :value {:op "d:0", :tenant "alice", :scan-id "s1"}}
{:index 1, :type :ok, :process 0, :time 5000, :f :status,
  :value {:op "d:0", :tenant "alice", :scan-id "s1", :http 200, :worker 2, :state :scanning, ...}}
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.record import read_record
from harness.history.tables import History, load_history

EDN_FILE = "history.edn"


def _keyword(word: str) -> str:
    """``:scanning``; characters EDN keywords cannot hold become ``-``."""
    return ":" + (re.sub(r"[^A-Za-z0-9_*+!?<>=.-]+", "-", word).strip("-") or "unknown")


def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _edn(value: Any) -> str:
    """EDN for the few shapes an op holds: Keyword-marked strings, str, int, bool, lists,
    maps with keyword keys."""
    if isinstance(value, _Kw):
        return _keyword(value.word)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nil"
    if value is None:
        return "nil"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_edn(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_keyword(k)} {_edn(v)}" for k, v in value.items()) + "}"
    return _string(str(value))


class _Kw:
    """A string written as an EDN keyword."""

    __slots__ = ("word",)

    def __init__(self, word: str) -> None:
        self.word = word


def _int(value: Any, default: int = -1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number


def _invoke_value(row: Mapping[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = {"op": str(row[S.OP]), "tenant": str(row[S.TENANT])}
    if row[S.KIND] == "discover":
        if row[S.FILTERS]:
            value["filters"] = str(row[S.FILTERS])
    elif row[S.SCAN_ID]:
        value["scan-id"] = str(row[S.SCAN_ID])
    if _int(row[S.PINNED_WORKER]) >= 0:
        value["pinned-worker"] = _int(row[S.PINNED_WORKER])
    return value


def _complete_value(row: Mapping[str, Any]) -> dict[str, Any]:
    value = {"op": str(row[S.OP]), "tenant": str(row[S.TENANT])}
    if row[S.SCAN_ID]:
        value["scan-id"] = str(row[S.SCAN_ID])
    out: dict[str, Any] = dict(value)
    if _int(row[S.HTTP_STATUS], 0) > 0:
        out["http"] = _int(row[S.HTTP_STATUS])
    if _int(row[S.WORKER]) >= 0:
        out["worker"] = _int(row[S.WORKER])
    if row[S.BODY_STATUS]:
        out["state"] = _Kw(str(row[S.BODY_STATUS]))
    if row[S.RAW_STATUS] and row[S.RAW_STATUS] != row[S.BODY_STATUS]:
        out["raw-status"] = str(row[S.RAW_STATUS])
    if bool(row[S.HAS_PROGRESS]):
        out["progress"] = [_int(row[S.COMPLETED]), _int(row[S.TOTAL])]
    if _int(row[S.ITEMS]) >= 0:
        out["items"] = _int(row[S.ITEMS])
    if row[S.BODY_SCAN_IDS] and row[S.BODY_SCAN_IDS] != row[S.SCAN_ID]:
        out["body-scan-ids"] = str(row[S.BODY_SCAN_IDS]).split(",")
    if row[S.BODY_USER_IDS]:
        out["body-user-ids"] = str(row[S.BODY_USER_IDS]).split(",")
    if row[S.ERROR]:
        out["error"] = str(row[S.ERROR])
    return out


def _events(history: History, t0_ns: int) -> list[tuple[int, int, dict[str, Any]]]:
    """(time, order, op map without :index and :process) for every line; order keeps an
    op's completion after its invoke when both carry one time."""
    events: list[tuple[int, int, dict[str, Any]]] = []
    rows = history.ops.to_dict("records")
    last = max(
        [_int(r[S.T_COMPLETE]) for r in rows] + [_int(r[S.T_INVOKE]) for r in rows] + [t0_ns]
    )
    for i, row in enumerate(rows):
        f = _Kw(str(row[S.KIND]))
        start = _int(row[S.T_INVOKE]) - t0_ns
        end = _int(row[S.T_COMPLETE])
        end = (last if end < 0 else end) - t0_ns  # no completion: :info at the history's end
        outcome = str(row[S.OUTCOME]) if row[S.OUTCOME] in S.OUTCOMES else "info"
        invoke = {"type": _Kw("invoke"), "f": f, "value": _invoke_value(row), "_op": i}
        events.append((start, 2 * i, invoke))
        done = {"type": _Kw(outcome), "f": f, "value": _complete_value(row), "_op": i}
        events.append((max(end, start), 2 * i + 1, done))
    base = 2 * len(rows)
    for j, fault in enumerate(history.faults.to_dict("records")):
        value = {
            "fault": _Kw(str(fault[S.FAULT])),
            "id": str(fault[S.FAULT_ID]),
            "target": str(fault[S.TARGET]),
            "landed": bool(fault[S.LANDED]),
            "destructive": bool(fault[S.DESTRUCTIVE]),
        }
        start, end = _int(fault[S.T_START]) - t0_ns, _int(fault[S.T_END]) - t0_ns
        begin = {"type": _Kw("info"), "f": _Kw("start"), "value": value}
        events.append((start, base + 2 * j, begin))
        if end > start:
            stop = {"type": _Kw("info"), "f": _Kw("stop"), "value": value}
            events.append((end, base + 2 * j + 1, stop))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def edn_lines(history: History, *, t0_ns: int) -> Iterator[str]:
    """The history as Jepsen operations, one EDN map per line, in time order."""
    free: list[int] = []  # processes with nothing outstanding, smallest first
    next_process = 0
    process_of: dict[int, int] = {}
    for index, (time, _, event) in enumerate(_events(history, t0_ns)):
        op = event.pop("_op", None)
        if op is None:
            process: Any = _Kw("nemesis")
        elif event["type"].word == "invoke":
            if free:
                process = heapq.heappop(free)
            else:
                process, next_process = next_process, next_process + 1
            process_of[op] = process
        else:
            process = process_of.pop(op)
            if event["type"].word != "info":  # a crashed process never invokes again
                heapq.heappush(free, process)
        line = {"index": index, "type": event["type"], "process": process, "time": time}
        yield _edn(line | {"f": event["f"], "value": event["value"]})


def run_t0_ns(run_dir: Path, history: History) -> int:
    """The run's t0 from run.json, else the first event of the history."""
    try:
        t0_ns = read_record(run_dir).t0_ns
    except (UsageError, OSError):
        t0_ns = 0
    if not t0_ns:
        times = [*history.ops[S.T_INVOKE].tolist(), *history.faults[S.T_START].tolist()]
        t0_ns = min((int(t) for t in times), default=0)
    return t0_ns


def write_edn(run_dir: Path, out: Path) -> int:
    """Write ``run_dir``'s history to ``out`` as EDN lines; returns the number of lines."""
    history = load_history(run_dir)  # a missing or empty directory: one UsageError line
    t0_ns = run_t0_ns(run_dir, history)
    count = 0
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in edn_lines(history, t0_ns=t0_ns):
            fh.write(line + "\n")
            count += 1
    tmp.replace(out)
    return count
