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

from harness.errors import ScanproofError
from harness.history import schema as S
from harness.history.record import RUN_FORMAT, RUN_JSON, RunRecord, phase_items, refuse_newer
from harness.history.tables import FAULTS_TABLE, OPS_TABLE, load_history
from harness.judging.verdict import VERDICT_JSON, ClassResult, Verdict

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
    # (label, seconds) per phase of the run in order, "total" last; () when not recorded
    phases: tuple[tuple[str, float], ...] = ()
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
    verdict_doc: Mapping[str, Any] = field(default_factory=dict)  # verdict.json as written

    def seconds(self, t_ns: int) -> float:
        return (t_ns - self.t0_ns) / _NS


def _text(value: Any) -> str:
    if value is None or value == "":
        return UNKNOWN
    return str(value)


def parse_run_info(record: RunRecord | None, raw: Mapping[str, Any]) -> RunInfo:
    """Display strings of a run record (``None``: run.json missing or unreadable);
    ``raw`` is the file as written, for the report's appendix."""
    if record is None:
        return RunInfo(record=dict(raw))
    config = record.config
    said = list(record.warnings)
    if record.crash:
        said.insert(0, f"the run crashed: {record.crash}")
    return RunInfo(
        app=_text(config.app or config.command or " ".join(config.targets) or config.host),
        preset=_text(config.preset),
        scenario=_text(config.scenario.get("name")),
        seed=_text(config.seed),
        # a running deployment's workers are its own: the report counts its targets
        workers=_targets_text(config.targets) if config.targets else _text(config.workers),
        router=_text(config.router),
        redis_backend=_text(config.redis.get("backend")),
        status=_text(record.status),
        started_at=_text(record.started_at),
        ended_at=_text(record.ended_at),
        scanproof_version=_text(record.scanproof_version),
        t0_ns=record.t0_ns or None,
        warnings=tuple(said),
        phases=tuple(phase_items(record.phases)),
        record=dict(raw),
    )


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


def _record(raw: Mapping[str, Any], path: Path, notes: list[str]) -> RunRecord | None:
    if not raw:
        return None
    refuse_newer(raw, supported=RUN_FORMAT, source=str(path))  # never guess at a newer file
    try:
        return RunRecord.from_json(raw, source=path.name)
    except ScanproofError as exc:
        notes.append(str(exc))
        return None


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
    raw_record = _read_json(run_dir / RUN_JSON, notes) or {}
    info = parse_run_info(_record(raw_record, run_dir / RUN_JSON, notes), raw_record)
    raw_verdict = _read_json(run_dir / VERDICT_JSON, notes)
    if raw_verdict is None:
        classes = {n: ClassResult.crashed(n, NOT_JUDGED) for n in S.ANOMALY_CLASSES}
        verdict = Verdict("unknown", classes, (NOT_JUDGED,))
    else:
        thresholds = raw_record.get("thresholds")
        verdict = Verdict.from_json(
            raw_verdict,
            source=str(run_dir / VERDICT_JSON),
            thresholds={
                str(k): v
                for k, v in (thresholds.items() if isinstance(thresholds, Mapping) else ())
                if isinstance(v, int) and not isinstance(v, bool)
            },
        )
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
        op_counts = {
            str(k): v
            for k, v in (recorded.items() if isinstance(recorded, Mapping) else ())
            if isinstance(v, int) and not isinstance(v, bool)
        } or {"total": 0}
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
        verdict_doc=raw_verdict or {},
    )


def _targets_text(targets: tuple[str, ...]) -> str:
    """``"1 target URL"`` / ``"3 target URLs"``: a deployment's own workers are unknown."""
    return f"{len(targets)} target URL{'s' if len(targets) != 1 else ''}"
