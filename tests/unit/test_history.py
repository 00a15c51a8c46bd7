"""Histories survive what real runs do to them: crashes, torn lines, many shards."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.tables import (
    Completion,
    FaultRecord,
    HistoryWriter,
    load_history,
    write_tables,
)


def _write_some(directory: Path, proc: str, n: int) -> None:
    with HistoryWriter(directory, proc=proc) as w:
        for i in range(n):
            op = w.invoke(kind="status", tenant="alice", scan_id=f"scan_{i}")
            w.complete(op, Completion(outcome="ok", http_status=200, body_status="scanning"))


def test_shards_from_several_processes_pair_into_one_table(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_some, args=(tmp_path, f"p{i}", 50)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    h = load_history(tmp_path)
    assert len(h.ops) == 150
    assert set(h.ops[S.PROC]) == {"p0", "p1", "p2"}
    assert h.ops[S.OP].is_unique
    assert list(h.ops.columns) == list(S.OP_COLUMNS)


def _die_mid_request(directory: Path) -> None:
    w = HistoryWriter(directory, proc="doomed")
    op = w.invoke(kind="discover", tenant="alice")
    w.complete(op, Completion(outcome="ok", http_status=200, scan_id="scan_a"))
    w.invoke(kind="status", tenant="alice", scan_id="scan_a")
    os._exit(1)  # the process dies with a request in flight


def test_invoke_of_a_process_that_died_is_kept_as_info(tmp_path: Path) -> None:
    p = multiprocessing.get_context("spawn").Process(target=_die_mid_request, args=(tmp_path,))
    p.start()
    p.join(timeout=30)
    h = load_history(tmp_path)
    assert h.unpaired_ops == 1
    row = h.ops[h.ops[S.KIND] == "status"].iloc[0]
    assert row[S.OUTCOME] == "info"
    assert "no completion" in row[S.ERROR]
    # discover learned its scan id from the answer
    assert h.ops[h.ops[S.KIND] == "discover"].iloc[0][S.SCAN_ID] == "scan_a"


def test_torn_last_line_is_dropped_not_fatal(tmp_path: Path) -> None:
    _write_some(tmp_path, "p0", 3)
    with (tmp_path / "p0.jsonl").open("a") as f:
        f.write('{"e":"invoke","op":"p0:99","ki')  # killed mid-write
    assert len(load_history(tmp_path).ops) == 3


def test_faults_are_a_separate_table(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path, proc="nemesis") as w:
        w.fault(
            FaultRecord(
                fault_id="f0", fault="worker_kill", target="worker:2", t_start_ns=5,
                t_end_ns=9, landed=True, evidence="pid 10 -> 11",
            )
        )  # fmt: skip
    h = load_history(tmp_path)
    assert len(h.ops) == 0
    assert h.faults.loc[0, S.EVIDENCE] == "pid 10 -> 11"
    assert h.faults[S.T_END].dtype == "int64"
    ops_path, faults_path = write_tables(h, tmp_path)
    assert pd.read_parquet(faults_path).equals(h.faults)
    assert list(pd.read_parquet(ops_path).columns) == list(S.OP_COLUMNS)


def test_bad_inputs_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such run directory"):
        load_history(tmp_path / "missing")
    with pytest.raises(UsageError, match="holds no history shards"):
        load_history(tmp_path)
    (tmp_path / "x.jsonl").write_text("this is not json\n")
    with pytest.raises(UsageError, match="not a scanproof history shard"):
        load_history(tmp_path)
    with pytest.raises(UsageError, match="proc"):
        HistoryWriter(tmp_path, proc="a/b")
