"""The live anomaly tally of the locust users and the runner's progress line.

Pure code: nothing here imports locust (it would monkey-patch the pytest process
with gevent). The tally must agree with the checkers on single answers and must
not cry wolf on a sound scan's life.
"""

from __future__ import annotations

import doctest
from pathlib import Path
from types import ModuleType

import pytest

from harness.history.schema import ANOMALY_CLASSES
from harness.run import _locust as locust_module
from harness.run._locust import LIVE_FILE, locust_env, progress_line, read_live
from harness.run.scenario import Scenario
from harness.targets.contract import Contract
from scenarios.locust import _live as live_module
from scenarios.locust._live import MEANING, LiveTally, Seen, merge, summary_line


def _tally(**kw: float | bool) -> LiveTally:
    t = LiveTally(retention_s=10.0, scan_deadline_s=30.0, **kw)  # type: ignore[arg-type]
    t.accepted("alice", "s1", asked=0.0, now=0.1)
    return t


def _poll(
    t: LiveTally, at: float, word: str, *, done: int = 1, total: int = 4, **kw: object
) -> str | None:
    seen = Seen(body_status=word, completed=done, total=total, **kw)  # type: ignore[arg-type]
    return t.observe("status", "alice", "s1", seen, asked=at, now=at + 0.01)


def test_a_sound_scan_life_shows_no_anomaly() -> None:
    t = _tally()
    for i, at in enumerate((1.0, 2.0, 3.0)):
        assert _poll(t, at, "scanning", done=i) is None
    assert _poll(t, 4.0, "complete", done=4) is None
    complete = Seen(body_status="complete", body_scan_ids="s1", items=3)
    assert t.observe("results", "alice", "s1", complete, asked=4.5, now=4.6) is None
    assert _poll(t, 8.0, "complete", done=4) is None
    # expired well after retention: a correct expiry, not an anomaly
    assert _poll(t, 40.0, "not_found", done=-1, total=-1, has_progress=False) is None
    refused = Seen(http_status=404, body_status="not_found")
    assert t.observe("status", "bob", "s1", refused, asked=5.0, now=5.1) is None
    assert t.snapshot() == {"ops": 8, "errors": 0, "anomalies": {}}


def test_not_found_counts_only_while_the_scan_is_live() -> None:
    t = _tally()
    _poll(t, 1.0, "scanning")
    assert _poll(t, 5.0, "not_found", has_progress=False) == "status_not_found"
    missing = Seen(http_status=404, body_status="not_found")
    assert t.observe("results", "alice", "s1", missing, asked=6.0, now=6.1) == "results_404"
    # retention counts from the last poll that proved the scan unfinished (1.0)
    assert _poll(t, 11.5, "not_found", has_progress=False) is None


def test_regressions_after_complete_and_after_failed() -> None:
    t = _tally()
    _poll(t, 1.0, "complete", done=4)
    assert _poll(t, 2.0, "scanning", done=4) == "status_regression"
    t.accepted("alice", "s2", asked=0.0, now=0.1)
    failed = Seen(body_status="failed")
    t.observe("status", "alice", "s2", failed, asked=1.0, now=1.1)
    again = Seen(body_status="complete", completed=4, total=4)
    assert t.observe("status", "alice", "s2", again, asked=2.0, now=2.1) == "status_regression"
    done = Seen(body_status="complete")
    t.observe("results", "alice", "s1", done, asked=3.0, now=3.1)
    pending = Seen(http_status=202, body_status="scanning")
    assert t.observe("results", "alice", "s1", pending, asked=4.0, now=4.1) == "status_regression"


def test_pending_after_a_terminal_answer_is_a_regression_as_the_checker_counts_it() -> None:
    """A "pending" (running or unknown) after complete or failed is a status_regression in
    the verdict; the live line once missed it and showed fewer than the verdict."""
    t = _tally()
    _poll(t, 1.0, "complete", done=4)
    assert _poll(t, 2.0, "pending", done=4) == "status_regression"
    t.accepted("alice", "s2", asked=0.0, now=0.1)
    t.observe("status", "alice", "s2", Seen(body_status="failed"), asked=1.0, now=1.1)
    pending = Seen(body_status="pending")
    assert t.observe("status", "alice", "s2", pending, asked=2.0, now=2.1) == "status_regression"
    t.observe("results", "alice", "s1", Seen(body_status="complete"), asked=3.0, now=3.1)
    later = Seen(http_status=202, body_status="pending")
    assert t.observe("results", "alice", "s1", later, asked=4.0, now=4.1) == "status_regression"


def test_one_answer_counts_in_every_class_it_shows_and_is_named_by_the_first() -> None:
    t = _tally()
    _poll(t, 1.0, "complete", done=4)
    # scanning again, with less progress and a zero total: three classes at once
    assert _poll(t, 2.0, "scanning", done=0, total=0) == "status_regression"
    assert t.snapshot()["anomalies"] == {
        "zero_progress": 1,
        "progress_regression": 1,
        "status_regression": 1,
    }


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (Seen(body_status="scanning", has_progress=False), "zero_progress"),
        (Seen(body_status="scanning", completed=0, total=0), "zero_progress"),
        (Seen(body_status="complete", completed=2, total=4), "zero_progress"),
        (Seen(body_status="scanning", completed=0, total=4), None),
        (Seen(body_status="failed", has_progress=False), None),
    ],
)
def test_zero_progress(seen: Seen, expected: str | None) -> None:
    t = _tally()
    assert t.observe("status", "alice", "s1", seen, asked=1.0, now=1.1) == expected


def test_an_api_without_progress_is_not_judged_on_progress() -> None:
    t = _tally(progress=False)
    assert _poll(t, 1.0, "scanning", done=-1, total=-1, has_progress=False) is None


def test_progress_regression_and_stuck_scan() -> None:
    t = _tally()
    _poll(t, 1.0, "scanning", done=3)
    assert _poll(t, 2.0, "scanning", done=2) == "progress_regression"
    assert _poll(t, 29.0, "scanning", done=3) is None
    assert _poll(t, 30.5, "scanning", done=3) == "stuck_scan"
    assert _poll(t, 31.5, "scanning", done=3) is None  # one per scan, like the checker
    t.accepted("alice", "s2", asked=0.0, now=0.1)
    pending = Seen(http_status=202, body_status="scanning")
    assert t.observe("results", "alice", "s2", pending, asked=31.0, now=31.1) == "stuck_scan"
    assert t.snapshot()["anomalies"]["stuck_scan"] == 2


def test_wrong_scan_is_judged_alone() -> None:
    t = _tally()
    other = Seen(body_status="not_found", body_scan_ids="s9", has_progress=False)
    assert t.observe("status", "alice", "s1", other, asked=1.0, now=1.1) == "wrong_scan"
    assert t.snapshot()["anomalies"] == {"wrong_scan": 1}  # not also status_not_found
    mine = Seen(body_status="scanning", body_scan_ids="s1", completed=0, total=4)
    assert t.observe("status", "alice", "s1", mine, asked=2.0, now=2.1) is None


@pytest.mark.parametrize(
    ("seen", "leak"),
    [
        (Seen(http_status=403, body_status="refused"), False),
        (Seen(http_status=404, body_status="not_found"), False),
        (Seen(http_status=200, body_status="not_found"), False),
        (Seen(http_status=200, body_status="complete"), True),
        (Seen(http_status=404, body_status="not_found", body_user_ids="alice"), True),
        (Seen(http_status=404, body_status="not_found", items=2), True),
        (Seen(http_status=404, body_status="not_found", body_scan_ids="s1,s2"), True),
        (Seen(http_status=400, body_status=""), False),
    ],
)
def test_probes_leak_when_not_refused_or_carrying_the_owners_data(seen: Seen, leak: bool) -> None:
    t = _tally()
    t.accepted("alice", "s2", asked=0.0, now=0.1)  # alice's other scan
    got = t.observe("results", "bob", "s1", seen, asked=1.0, now=1.1)
    assert got == ("cross_tenant_leak" if leak else None)


def test_answers_about_scans_this_process_never_started_are_counted_not_judged() -> None:
    t = _tally()
    seen = Seen(http_status=200, body_status="complete", body_scan_ids="zz")
    assert t.observe("status", "bob", "unknown", seen, asked=1.0, now=1.1) is None
    t.error()
    assert t.snapshot() == {"ops": 2, "errors": 1, "anomalies": {}}


def test_every_class_has_one_fixed_failure_message() -> None:
    assert tuple(MEANING) == ANOMALY_CLASSES
    assert all(m and "{" not in m for m in MEANING.values())


def test_worker_snapshots_merge_in_verdict_order() -> None:
    merged = merge(
        [
            {"ops": 10, "errors": 1, "anomalies": {"wrong_scan": 2}},
            {"ops": 30, "errors": 0, "anomalies": {"wrong_scan": 1, "status_not_found": 4}},
        ]
    )
    assert merged == {
        "ops": 40,
        "errors": 1,
        "anomalies": {"status_not_found": 4, "wrong_scan": 3},
    }
    assert summary_line(merged) == (
        "answers 40  errors 1  anomalies so far: status_not_found 4 (10.0%), wrong_scan 3 (7.5%)"
    )


def test_the_runner_asks_locust_for_a_live_file_in_the_run_directory(tmp_path: Path) -> None:
    env = locust_env(tmp_path, seed=0, workload=Scenario(name="w"), contract=Contract())
    assert env["SCANPROOF_LIVE_FILE"] == str(tmp_path / LIVE_FILE)


def test_progress_line_reads_the_live_file_and_survives_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / LIVE_FILE
    assert read_live(path) is None
    path.write_text('{"ops": 10, "users": 2, "errors": 0, "anomalies": {"wrong_')
    assert read_live(path) is None
    path.write_text('{"ops": 10, "users": 2, "errors": 0, "anomalies": {"wrong_scan": 5}}')
    line = progress_line(read_live(path), elapsed_s=3.0, run_s=20.0)
    assert line == (
        "[  3.0s/20s] locust: users 2  answers 10  errors 0  anomalies so far: wrong_scan 5 (50.0%)"
    )


@pytest.mark.parametrize("module", [live_module, locust_module])
def test_docstring_examples(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0
