"""Reading a run directory for reporting, tolerating whatever is missing.

A report must render for a run that crashed half-way: every ``run.json`` field
is optional (shown as "unknown"), a missing ``verdict.json`` makes every class
"not judged" (the report never judges), and missing tables are rebuilt from
the JSONL shards or left empty. What could not be read is kept in
:attr:`RunData.notes` and shown in the report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import schema as S
from harness.errors import ScanproofError
from harness.history import FAULTS_TABLE, OPS_TABLE, load_history
from harness.verdict import ClassResult, Verdict, VerdictWord, Witness

RUN_JSON = "run.json"
VERDICT_JSON = "verdict.json"
UNKNOWN = "unknown"
NOT_JUDGED = "not judged: the run directory holds no verdict.json"
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """What ``run.json`` says, every field a display string ("unknown" when absent)."""

    app: str = UNKNOWN
    preset: str = UNKNOWN
    scenario: str = UNKNOWN
    seed: str = UNKNOWN
    workers: str = UNKNOWN
    router: str = UNKNOWN
    redis_backend: str = UNKNOWN
    status: str = UNKNOWN  # complete | interrupted | crashed | running
    started_at: str = UNKNOWN
    ended_at: str = UNKNOWN
    scanproof_version: str = UNKNOWN
    t0_ns: int | None = None
    warnings: tuple[str, ...] = ()  # faults that did not land, a crash: shown near the top
    record: Mapping[str, Any] = field(default_factory=dict)  # the whole file, for the appendix


@dataclass(frozen=True, slots=True, kw_only=True)
class RunData:
    """Everything a report shows about one run."""

    run_dir: Path
    info: RunInfo
    verdict: Verdict
    ops: pd.DataFrame
    faults: pd.DataFrame
    t0_ns: int  # op times minus this are seconds into the run
    duration_s: float  # NaN when unknown
    op_counts: Mapping[str, int]  # total, ok, fail, info
    notes: tuple[str, ...] = ()  # what could not be read, one line each

    def seconds(self, t_ns: int) -> float:
        return (t_ns - self.t0_ns) / _NS


def _text(value: Any) -> str:
    if value is None or value == "":
        return UNKNOWN
    return str(value)


def _get(record: Mapping[str, Any], *path: str) -> Any:
    node: Any = record
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def parse_run_info(record: Mapping[str, Any]) -> RunInfo:
    scenario = _get(record, "config", "scenario")
    if isinstance(scenario, Mapping):
        scenario = scenario.get("name")
    t0 = record.get("t0_ns")
    warnings = record.get("warnings")
    said = [str(w) for w in warnings] if isinstance(warnings, list) else []
    if record.get("crash"):
        said.insert(0, f"the run crashed: {record['crash']}")
    return RunInfo(
        app=_text(_get(record, "config", "app")),
        preset=_text(_get(record, "config", "preset")),
        scenario=_text(scenario),
        seed=_text(_get(record, "config", "seed")),
        workers=_text(_get(record, "config", "workers")),
        router=_text(_get(record, "config", "router")),
        redis_backend=_text(_get(record, "config", "redis", "backend")),
        status=_text(record.get("status")),
        started_at=_text(record.get("started_at")),
        ended_at=_text(record.get("ended_at")),
        scanproof_version=_text(record.get("scanproof_version")),
        t0_ns=t0 if isinstance(t0, int) and not isinstance(t0, bool) else None,
        warnings=tuple(said),
        record=dict(record),
    )


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _witness(raw: Mapping[str, Any]) -> Witness:
    faults = raw.get("faults") or ()
    return Witness(
        op=str(raw.get("op", "")),
        scan_id=str(raw.get("scan_id", "")),
        tenant=str(raw.get("tenant", "")),
        kind=str(raw.get("kind", "")),
        worker=_int(raw.get("worker"), -1),
        t_invoke_ns=_int(raw.get("t_invoke_ns")),
        http_status=_int(raw.get("http_status")),
        body_status=str(raw.get("body_status", "")),
        reason=str(raw.get("reason", "")),
        faults=tuple(str(f) for f in faults) if isinstance(faults, list | tuple) else (),
    )


def _counts(raw: Any) -> dict[str, int]:
    return {str(k): _int(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _class_result(name: str, raw: Any) -> ClassResult:
    if not isinstance(raw, Mapping):
        return ClassResult.crashed(name, "missing from verdict.json")
    witnesses = raw.get("witnesses") or []
    return ClassResult(
        name=name,
        count=_int(raw.get("count")),
        opportunities=_int(raw.get("opportunities")),
        excused=_int(raw.get("excused")),
        excused_by=_counts(raw.get("excused_by")),
        fault_windows=_counts(raw.get("fault_windows")),
        witnesses=tuple(_witness(w) for w in witnesses if isinstance(w, Mapping)),
        error=str(raw.get("error") or ""),
    )


def parse_verdict(raw: Mapping[str, Any]) -> Verdict:
    """Rebuild a :class:`Verdict` from ``verdict.json`` exactly as recorded (never re-decided)."""
    word = raw.get("verdict")
    verdict: VerdictWord = word if word in ("pass", "fail", "unknown") else "unknown"
    anomalies = raw.get("anomalies")
    anomalies = anomalies if isinstance(anomalies, Mapping) else {}
    classes = {name: _class_result(name, anomalies.get(name)) for name in S.ANOMALY_CLASSES}
    reasons = raw.get("reasons")
    reasons = [str(r) for r in reasons] if isinstance(reasons, list) else []
    if word not in ("pass", "fail", "unknown"):
        reasons.append(f"verdict.json holds no verdict word (found {word!r})")
    return Verdict(verdict, classes, tuple(reasons))


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(f"{path.name} is missing")
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{path.name} could not be read ({exc})")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name} is not a JSON object")
        return None
    return data


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _tables(run_dir: Path, notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ops_path, faults_path = run_dir / OPS_TABLE, run_dir / FAULTS_TABLE
    try:
        if ops_path.exists() and faults_path.exists():
            return pd.read_parquet(ops_path), pd.read_parquet(faults_path)
        history = load_history(run_dir)
        notes.append("ops.parquet/faults.parquet missing: tables rebuilt from the JSONL shards")
        return history.ops, history.faults
    except (ScanproofError, OSError, ValueError) as exc:
        notes.append(f"no ops or faults could be read ({exc})")
        return _empty(S.OP_COLUMNS), _empty(S.FAULT_COLUMNS)


def _first_event_ns(ops: pd.DataFrame, faults: pd.DataFrame) -> int | None:
    starts = [int(ops[S.T_INVOKE].min())] if len(ops) else []
    if len(faults):
        starts.append(int(faults[S.T_START].min()))
    return min(starts) if starts else None


def _last_event_ns(ops: pd.DataFrame, faults: pd.DataFrame) -> int | None:
    ends = [int(ops[[S.T_INVOKE, S.T_COMPLETE]].max().max())] if len(ops) else []
    if len(faults):
        ends.append(int(faults[[S.T_START, S.T_END]].max().max()))
    return max(ends) if ends else None


def _duration_s(info: RunInfo, t0: int, last: int | None) -> float:
    try:
        start = dt.datetime.fromisoformat(info.started_at)
        end = dt.datetime.fromisoformat(info.ended_at)
        return (end - start).total_seconds()
    except (ValueError, TypeError):
        return math.nan if last is None else (last - t0) / _NS


def load_run(run_dir: Path) -> RunData:
    """Read ``run_dir``; never raises for a missing or malformed file (it becomes a note)."""
    notes: list[str] = []
    record = _read_json(run_dir / RUN_JSON, notes) or {}
    info = parse_run_info(record)
    raw_verdict = _read_json(run_dir / VERDICT_JSON, notes)
    if raw_verdict is None:
        classes = {n: ClassResult.crashed(n, NOT_JUDGED) for n in S.ANOMALY_CLASSES}
        verdict = Verdict("unknown", classes, (NOT_JUDGED,))
    else:
        verdict = parse_verdict(raw_verdict)
    ops, faults = _tables(run_dir, notes)
    first, last = _first_event_ns(ops, faults), _last_event_ns(ops, faults)
    t0 = info.t0_ns
    # A t0 after the first event, or a day before it, is from another clock: derive one.
    if t0 is None or (first is not None and not (first - _DAY_NS <= t0 <= first)):
        t0 = first if first is not None else 0
    if len(ops):
        outcomes = ops[S.OUTCOME].value_counts()
        op_counts = {"total": len(ops)} | {o: int(outcomes.get(o, 0)) for o in S.OUTCOMES}
    else:
        recorded = (raw_verdict or {}).get("ops")
        op_counts = _counts(recorded) if isinstance(recorded, Mapping) else {"total": 0}
    return RunData(
        run_dir=run_dir,
        info=info,
        verdict=verdict,
        ops=ops,
        faults=faults,
        t0_ns=t0,
        duration_s=_duration_s(info, t0, last),
        op_counts=op_counts,
        notes=tuple(notes),
    )
