"""Recording and reading histories.

A :class:`HistoryWriter` appends one process's events to its own JSONL shard,
flushing every line, so a crash loses at most the line being written (the
writer itself lives in the stdlib-only :mod:`harness.history.writer`, re-exported here).
:func:`load_history` pairs the shards of a run into two tables (see
:mod:`harness.history.schema` for every column):

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with HistoryWriter(d, proc="driver-0") as w:
...     op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
...     w.complete(op, Completion(outcome="ok", http_status=200, body_status="scanning"))
>>> h = load_history(d)
>>> h.ops.loc[0, "body_status"]
'scanning'

Lines of history format 1 (before canonical states) are read as format 2: a
results answer's state comes from its HTTP code, a status word stays when it is
canonical, and ``raw_status`` gets the word the line recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from harness.errors import InfrastructureError, UsageError
from harness.history import schema as S
from harness.history.outcomes import v1_state
from harness.history.record import refuse_newer
from harness.history.writer import Completion, EventRecorder, FaultRecord, HistoryWriter

__all__ = [
    "Completion",
    "EventRecorder",
    "FaultRecord",
    "History",
    "HistoryWriter",
    "load_history",
    "pair_events",
    "write_tables",
]

SHARD_GLOB = "*.jsonl"
OPS_TABLE = "ops.parquet"
FAULTS_TABLE = "faults.parquet"
NO_COMPLETION = "no completion recorded (the recording process stopped mid-request)"


@dataclass(frozen=True)
class History:
    """A paired history: one row per op, one row per fault."""

    ops: pd.DataFrame
    faults: pd.DataFrame
    unpaired_ops: int = 0  # invokes with no completion (counted as info)
    shards: tuple[str, ...] = field(default=())


# Explicit schema: shards mix event types, so inference from the first block would guess wrong.
_STR = pa.string()
_INT = pa.int64()
_BOOL = pa.bool_()
_EVENT_SCHEMA = pa.schema(
    [
        (S.EVENT, _STR),
        (S.FORMAT, _INT),
        (S.OP, _STR),
        (S.PROC, _STR),
        (S.KIND, _STR),
        (S.TENANT, _STR),
        (S.SCAN_ID, _STR),
        (S.FILTERS, _STR),
        (S.PINNED_WORKER, _INT),
        (S.T_INVOKE, _INT),
        (S.T_COMPLETE, _INT),
        (S.OUTCOME, _STR),
        (S.WORKER, _INT),
        (S.HTTP_STATUS, _INT),
        (S.BODY_STATUS, _STR),
        (S.RAW_STATUS, _STR),
        (S.COMPLETED, _INT),
        (S.TOTAL, _INT),
        (S.FOUND, _INT),
        (S.HAS_PROGRESS, _BOOL),
        (S.ITEMS, _INT),
        (S.BODY_SCAN_IDS, _STR),
        (S.BODY_USER_IDS, _STR),
        (S.ERROR, _STR),
        (S.FAULT_ID, _STR),
        (S.FAULT, _STR),
        (S.TARGET, _STR),
        (S.PARAMS, _STR),
        (S.T_START, _INT),
        (S.T_END, _INT),
        (S.LANDED, _BOOL),
        (S.EVIDENCE, _STR),
        (S.DESTRUCTIVE, _BOOL),
        (S.SCOPE, _STR),
        (S.AFFECTED_SCANS, _STR),
        (S.AFFECTED_TENANTS, _STR),
    ]
)
_INVOKE_COLS = [S.OP, S.PROC, S.KIND, S.TENANT, S.SCAN_ID, S.FILTERS, S.PINNED_WORKER, S.T_INVOKE]
_COMPLETE_COLS = [c for c in S.OP_COLUMNS if c not in _INVOKE_COLS or c in (S.OP, S.SCAN_ID)]
_DONE_FORMAT = "_v_done"  # the history format of each op's complete line


_SHARD_BLOCK = 64 << 20  # bytes of a shard parsed at a time (whole lines)
_FAULT_COLS = list(S.FAULT_COLUMNS)
# What each event type keeps: the columns pairing reads, nothing of the other types' columns.
_PARTS: dict[str, list[str]] = {
    S.EV_INVOKE: _INVOKE_COLS,
    S.EV_COMPLETE: [*_COMPLETE_COLS, S.FORMAT],
    S.EV_FAULT: _FAULT_COLS,
}


def _blocks(path: Path) -> Iterator[bytes]:
    """The shard's whole lines, about ``_SHARD_BLOCK`` bytes at a time. A process killed
    mid-write leaves a torn last line: it is dropped, the rest kept."""
    with path.open("rb") as f:
        rest = b""
        while block := f.read(_SHARD_BLOCK):
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            rest = data[cut:]


def _read_shard(path: Path) -> dict[str, list[pa.Table]]:
    """One shard's events, split by type, each with the columns pairing reads (a block
    at a time: a shard is never held whole, as bytes or as a table of every column)."""
    parts: dict[str, list[pa.Table]] = {event: [] for event in _PARTS}
    for data in _blocks(path):
        try:
            table = pajson.read_json(
                pa.BufferReader(data),
                parse_options=pajson.ParseOptions(
                    explicit_schema=_EVENT_SCHEMA, unexpected_field_behavior="ignore"
                ),
            )
        except pa.ArrowInvalid as exc:
            raise UsageError(f"{path}: not a scanproof history shard ({exc})") from exc
        del data
        newest = pc.max(table.column(S.FORMAT)).as_py()
        if newest is not None:
            refuse_newer({"format": newest}, supported=S.HISTORY_FORMAT, source=str(path))
        event = table.column(S.EVENT)
        for name, columns in _PARTS.items():
            part = table.select(columns).filter(pc.equal(event, name))
            if part.num_rows:
                parts[name].append(part)
    return parts


def _frame(tables: list[pa.Table], columns: list[str]) -> pd.DataFrame:
    if not tables:
        return _EVENT_SCHEMA.empty_table().select(columns).to_pandas()
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    tables.clear()  # the frame replaces them
    return table.to_pandas()


def pair_events(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Pair invoke and complete events into ops; split out faults."""
    kinds = events[S.EVENT]
    return _pair(
        [
            events.loc[kinds == S.EV_INVOKE, _INVOKE_COLS],
            events.loc[kinds == S.EV_COMPLETE, [*_COMPLETE_COLS, S.FORMAT]],
            events.loc[kinds == S.EV_FAULT, _FAULT_COLS],
        ]
    )


def _pair(events: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The ops and faults tables from the invokes, completes and faults in ``events``, each
    in the order they were read. ``events`` is emptied: each frame is freed once used."""
    invokes, completes, faults = events
    events.clear()
    completes = completes.drop_duplicates(S.OP, keep="first").rename(
        columns={S.FORMAT: _DONE_FORMAT}
    )
    ops = invokes.merge(completes, on=S.OP, how="left", suffixes=("", "_done"))
    del invokes, completes
    done_id = ops.pop(f"{S.SCAN_ID}_done")
    # discover learns its scan id only from the answer
    ops[S.SCAN_ID] = ops[S.SCAN_ID].where(ops[S.SCAN_ID].astype(bool), done_id.fillna(""))
    missing = ops[S.OUTCOME].isna()
    unpaired = int(missing.sum())
    defaults: dict[str, Any] = {
        S.OUTCOME: "info",
        S.T_COMPLETE: -1,
        S.WORKER: -1,
        S.HTTP_STATUS: 0,
        S.BODY_STATUS: "",
        S.RAW_STATUS: "",
        S.COMPLETED: -1,
        S.TOTAL: -1,
        S.FOUND: -1,
        S.HAS_PROGRESS: False,
        S.ITEMS: -1,
        S.BODY_SCAN_IDS: "",
        S.BODY_USER_IDS: "",
        S.ERROR: "",
    }
    old = ops.pop(_DONE_FORMAT).fillna(0) < 2  # no "v": a shard older than formats
    ops = ops.fillna(defaults)
    if unpaired:
        ops.loc[missing, S.ERROR] = NO_COMPLETION
    for col in (S.PINNED_WORKER, S.T_INVOKE, S.T_COMPLETE, S.WORKER, S.HTTP_STATUS):
        ops[col] = ops[col].astype("int64")
    for col in (S.COMPLETED, S.TOTAL, S.FOUND, S.ITEMS):
        ops[col] = ops[col].astype("int64")
    if old.any():
        ops = _canonical_v1(ops, old.to_numpy() & ~missing.to_numpy())
    ops[S.HAS_PROGRESS] = ops[S.HAS_PROGRESS].astype(bool)
    ops = ops.sort_values(S.T_INVOKE, kind="stable").reset_index(drop=True)
    ops = ops[list(S.OP_COLUMNS)]
    faults = faults.copy()
    for col in (S.T_START, S.T_END):
        faults[col] = faults[col].fillna(-1).astype("int64")
    for col in (S.LANDED, S.DESTRUCTIVE):
        faults[col] = faults[col].fillna(False).astype(bool)
    faults = faults.sort_values(S.T_START, kind="stable").reset_index(drop=True)
    return ops, faults, unpaired


def _canonical_v1(ops: pd.DataFrame, old: Any) -> pd.DataFrame:
    """Ops answered in history format 1 (or before formats) read as format 2: the word
    moves to ``raw_status`` and ``body_status`` becomes canonical (:func:`v1_state`).
    Format 1 recorded no items: they stay -1."""
    rows = ops.loc[old, [S.KIND, S.HTTP_STATUS, S.BODY_STATUS]]
    triples = rows.drop_duplicates()
    states = {
        (k, h, b): v1_state(str(k), int(h), str(b))
        for k, h, b in zip(
            triples[S.KIND], triples[S.HTTP_STATUS], triples[S.BODY_STATUS], strict=True
        )
    }
    ops.loc[old, S.RAW_STATUS] = rows[S.BODY_STATUS]
    ops.loc[old, S.BODY_STATUS] = [
        states[t] for t in zip(rows[S.KIND], rows[S.HTTP_STATUS], rows[S.BODY_STATUS], strict=True)
    ]
    return ops


def load_history(directory: Path, *, shards: Iterable[Path] | None = None) -> History:
    """Read every JSONL shard under ``directory`` and pair them into tables."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such run directory; pass the --out of a run")
    paths = sorted(shards) if shards is not None else sorted(directory.glob(SHARD_GLOB))
    if not paths:
        raise UsageError(f"{directory}: holds no history shards (*.jsonl)")
    parts: dict[str, list[pa.Table]] = {event: [] for event in _PARTS}
    try:
        for path in paths:
            for event, tables in _read_shard(path).items():
                parts[event] += tables
    except OSError as exc:
        raise InfrastructureError(f"cannot read history in {directory}: {exc}") from exc
    ops, faults, unpaired = _pair([_frame(parts[e], cols) for e, cols in _PARTS.items()])
    return History(ops=ops, faults=faults, unpaired_ops=unpaired, shards=tuple(map(str, paths)))


def write_tables(history: History, run_dir: Path) -> tuple[Path, Path]:
    """Write the ops and faults tables as Parquet next to the shards."""
    ops_path, faults_path = run_dir / OPS_TABLE, run_dir / FAULTS_TABLE
    history.ops.to_parquet(ops_path, index=False)
    history.faults.to_parquet(faults_path, index=False)
    return ops_path, faults_path
