"""Tables count what the history and verdict say; plots draw whatever a run left behind."""

from __future__ import annotations

import math

import pandas as pd

from harness.history import schema as S
from harness.judging.checkers import judge
from harness.judging.verdict import ClassResult, decide
from reports import class_table
from reports.plots import latency_plot, rates_plot, status_plot
from reports.tables import fault_table, worker_table
from tests.unit.reports.run_catalogue import CFG, lost_scan_history

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_class_table_marks_fail_unknown_and_no_data() -> None:
    v = decide(
        [
            ClassResult(name="results_404", count=2, opportunities=40),
            ClassResult.crashed("stuck_scan", "KeyError: x"),
        ],
        thresholds={},
    )
    t = class_table(v).set_index("class")
    assert list(t.index) == list(S.ANOMALY_CLASSES)
    assert t.loc["results_404", "verdict"] == "fail"
    assert t.loc["results_404", "rate_pct"] == 5.0
    assert t.loc["stuck_scan", "verdict"] == "unknown"
    assert math.isnan(t.loc["wrong_scan", "rate_pct"])  # no opportunities: no rate
    lenient = decide([ClassResult(name="results_404", count=2, opportunities=40)],
                     thresholds={"results_404": 2})  # fmt: skip
    row = class_table(lenient).set_index("class").loc["results_404"]
    assert (row["verdict"], row["threshold"]) == ("pass", 2)


def test_worker_table_counts_answers_and_witnesses_per_worker() -> None:
    history = lost_scan_history().build()
    t = worker_table(history.ops, judge(history, CFG)).set_index("worker")
    assert list(t.index) == ["worker 0", "worker 1", "worker 2", "worker 3", "no answer"]
    assert t.loc["worker 2", "status not_found"] == 1
    assert t.loc["worker 2", "witnesses status_not_found"] == 1
    assert t.loc["worker 3", "HTTP 404"] == 1
    assert t.loc["worker 3", "witnesses results_404"] == 1
    assert (t.loc["no answer", "info"], t.loc["no answer", "no HTTP"]) == (1, 1)
    assert int(t["ops"].sum()) == len(history.ops)


def test_fault_table_is_in_seconds_into_the_run() -> None:
    history = lost_scan_history().build()
    t = fault_table(history.faults, t0_ns=1_000_000_000)
    row = t.iloc[0]
    assert (row["id"], row["fault"], row["target"]) == ("f0", "worker_kill", "worker:3")
    assert (row["start_s"], row["end_s"], row["landed"]) == (2.0, 2.6, True)


def test_plots_draw_an_empty_history() -> None:
    ops = pd.DataFrame({c: pd.Series(dtype=object) for c in S.OP_COLUMNS})
    faults = pd.DataFrame({c: pd.Series(dtype=object) for c in S.FAULT_COLUMNS})
    assert status_plot(ops, faults, t0_ns=0).startswith(PNG_MAGIC)
    assert latency_plot(ops, faults, t0_ns=0).startswith(PNG_MAGIC)
    crashed = decide([ClassResult.crashed(n, "boom") for n in S.ANOMALY_CLASSES], thresholds={})
    assert rates_plot(class_table(crashed)).startswith(PNG_MAGIC)
