"""Never pass on nothing: a run that tested nothing, tested less than its plan, or
did not finish is ``unknown`` with the reason (a failing class still beats that).

Histories in memory for the judge; small run directories on disk for ``check``,
``compare`` and the recovery of a killed run (no cluster, no service).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli._main import main
from harness.history import schema as S
from harness.history.outcomes import NOT_JSON
from harness.history.record import (
    CheckSettings,
    RunConfig,
    RunRecord,
    new_record,
    read_record,
    runner_identity,
    write_record,
)
from harness.history.tables import load_history
from harness.history.writer import Completion, HistoryWriter
from harness.judging.checkers import CheckConfig, judge
from harness.judging.run_dir import judge_run_dir
from harness.judging.verdict import Verdict
from harness.run.plan import expected_classes, make_plan
from harness.run.scenario import Scenario
from harness.targets.contract import Contract
from tests.unit.history_catalogue import Hist, healthy_scan

CFG = CheckConfig(retention_s=3.0, scan_deadline_s=10.0)
EVERY_SCAN = ("status_not_found", "results_404", "stuck_scan")  # with a deadline in the run


def _discovers(n: int, *, http: int, error: str = "", outcome: str = "info") -> Hist:
    h = Hist()
    for i in range(n):
        h.discover(f"t{i}", "", at=i * 10, http_status=http, outcome=outcome, error=error)
    return h


# --- the judge: nothing tested ---------------------------------------------------------


def test_an_app_answering_500_to_every_discover_is_unknown_with_the_answers_summarised() -> None:
    v = judge(_discovers(12, http=500).build(), CFG, service="tests.apps.dead:app")
    assert v.verdict == "unknown"
    assert v.reasons[0] == (
        "no scan was accepted by tests.apps.dead:app: 0 of 12 discovers yielded a scan id "
        "(answers: HTTP 500 x 12)"
    )
    assert "the app never answered: 0 of 12 requests" in v.reasons[1]
    assert {r.verdict for r in v.classes.values()} == {"unknown"}
    assert not any(r.exercised for r in v.classes.values())


def test_an_app_answering_html_200_is_unknown_not_pass() -> None:
    h = _discovers(3, http=200, error=NOT_JSON, outcome="ok")
    h.discover("t9", "", at=99, http_status=0, outcome="info", error="ReadTimeout: timed out")
    v = judge(h.build(), CFG)
    assert v.verdict == "unknown"
    assert v.reasons == (
        "no scan was accepted: 0 of 4 discovers yielded a scan id "
        "(answers: HTTP 200 (not JSON) x 3, ReadTimeout x 1)",
    )  # some answers were ok (200): the app did answer, it accepted nothing


def test_an_empty_history_is_unknown(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path, proc="driver-0"):
        pass  # the run stopped before its first request
    v = judge(load_history(tmp_path), CFG)
    assert (v.verdict, v.reasons) == ("unknown", ("no op was recorded: nothing was tested",))


def test_an_app_that_never_answered_is_unknown_even_without_discovers() -> None:
    h = Hist()
    h.status("alice", "s1", "", at=0, http_status=0, outcome="fail", error="ConnectError: x")
    v = judge(h.build(), CFG)
    assert v.verdict == "unknown"
    assert any(r.startswith("the app never answered: 0 of 1 requests") for r in v.reasons)


# --- the judge: a class the plan should exercise got no opportunity -------------------------


def test_an_expected_class_without_opportunities_is_unknown_never_fail() -> None:
    v = judge(
        healthy_scan(Hist()).build(), CFG, expected_classes={*EVERY_SCAN, "cross_tenant_leak"}
    )
    assert v.verdict == "unknown"
    assert v.reasons == (
        "not exercised: cross_tenant_leak got no opportunity, though the run should exercise it",
    )
    leak = v.classes["cross_tenant_leak"]
    assert (leak.verdict, leak.expected, leak.exercised) == ("unknown", True, False)
    assert v.classes["status_not_found"].verdict == "pass"
    unplanned = v.classes["wrong_scan"]
    assert (unplanned.verdict, unplanned.expected) == ("pass", False)


def test_a_failing_class_beats_not_exercised() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150)
    v = judge(h.build(), CFG, expected_classes={"cross_tenant_leak"})
    assert v.verdict == "fail"
    assert v.reasons[0] == "status_not_found: 1 > 0 allowed"
    assert v.reasons[1].startswith("not exercised: cross_tenant_leak")


def test_without_expected_classes_there_is_no_exercise_rule() -> None:
    v = judge(healthy_scan(Hist()).build(), CFG)  # an older run.json states none
    assert v.verdict == "pass"
    assert v.classes["cross_tenant_leak"].expected is None


def test_exercised_and_expected_are_recorded_per_class_and_read_back() -> None:
    v = judge(healthy_scan(Hist()).build(), CFG, expected_classes={"cross_tenant_leak"})
    doc = json.loads(json.dumps(v.to_json()))
    leak = doc["anomalies"]["cross_tenant_leak"]
    assert (leak["exercised"], leak["expected"], leak["verdict"]) == (False, True, "unknown")
    assert doc["anomalies"]["status_not_found"]["exercised"] is True
    again = Verdict.from_json(doc, source="verdict.json")
    assert again.classes["cross_tenant_leak"].expected is True
    assert again.reasons == v.reasons


# --- what a plan should exercise -------------------------------------------------------


PROGRESS = ("zero_progress", "progress_regression")


@pytest.mark.parametrize(
    ("probes", "progress_field", "driver", "expected"),
    [
        (1.0, "progress", "scripted", (*EVERY_SCAN, *PROGRESS, "cross_tenant_leak")),
        (0.0, "progress", "scripted", (*EVERY_SCAN, *PROGRESS)),
        (1.0, "", "scripted", (*EVERY_SCAN, "cross_tenant_leak")),
        (1.0, "progress", "locust", (*EVERY_SCAN, *PROGRESS)),
    ],
)
def test_expected_classes_follow_the_plan_and_the_contract(
    probes: float, progress_field: str, driver: str, expected: tuple[str, ...]
) -> None:
    plan = make_plan(Scenario(name="p", tenants=3, probes=probes), seed=1)
    got = expected_classes(
        plan, Contract(progress_field=progress_field), scan_deadline_s=250.0, driver=driver
    )
    assert sorted(got) == sorted(expected)
    assert got == tuple(c for c in S.ANOMALY_CLASSES if c in got)  # canonical order


def test_stuck_scan_is_expected_only_when_a_deadline_passes_while_the_scan_is_watched() -> None:
    # seed-repro's shape: one scan, a fixed 60 polls 3 s apart, so watched for 180 s
    plan = make_plan(Scenario(name="r", tenants=1, scans_per_tenant=1, polls=60,
                              duration=10.0, probes=0.0), seed=0)  # fmt: skip
    start = plan.scans[0].start_s
    assert "stuck_scan" in expected_classes(plan, Contract(), scan_deadline_s=170.0 - start)
    assert "stuck_scan" not in expected_classes(plan, Contract(), scan_deadline_s=200.0)
    assert "stuck_scan" not in expected_classes(plan, Contract())  # deadline not known


# --- run directories: unfinished runs ---------------------------------------------------


def _write_history(run_dir: Path, *, lost: bool = False) -> None:
    """One scan, seen scanning then complete, results fetched; ``lost``: one more poll
    that says not_found while the scan is live (a status_not_found anomaly)."""
    ok = {"outcome": "ok", "http_status": 200, "body_scan_ids": "scan_1"}
    with HistoryWriter(run_dir, proc="driver-0") as w:
        op = w.invoke(kind="discover", tenant="alice")
        w.complete(op, Completion(outcome="ok", http_status=202, scan_id="scan_1"))
        for word, done in (("scanning", 3), ("complete", 14)):
            op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
            progress = {"completed": done, "total": 14, "has_progress": True}
            w.complete(op, Completion(body_status=word, **progress, **ok))  # type: ignore[arg-type]
        if lost:
            op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
            w.complete(op, Completion(outcome="ok", http_status=404, body_status="not_found"))
        op = w.invoke(kind="results", tenant="alice", scan_id="scan_1")
        w.complete(op, Completion(**ok))  # type: ignore[arg-type]


def _run_dir(tmp_path: Path, status: str, *, lost: bool = False, **fields: object) -> Path:
    run_dir = tmp_path / f"run-{status}"
    run_dir.mkdir()
    _write_history(run_dir, lost=lost)
    record = new_record(config=RunConfig(app="tests.toy_apps.toy_scan:app")).but(
        check=CheckSettings(retention_s=3.0, scan_deadline_s=10.0, expected_classes=EVERY_SCAN),
        status=status,
        **fields,
    )
    write_record(run_dir, record)
    return run_dir


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


@pytest.mark.parametrize("status", ["interrupted", "crashed", "killed"])
def test_check_of_an_unfinished_run_is_unknown_naming_it(tmp_path: Path, status: str) -> None:
    run_dir = _run_dir(tmp_path, status)
    v = judge_run_dir(run_dir)
    assert v.verdict == "unknown"
    assert f"incomplete: judged 4 ops recorded before the run was {status}" in v.reasons
    recorded = json.loads((run_dir / "verdict.json").read_text())
    assert (recorded["verdict"], recorded["status"]) == ("unknown", status)


def test_what_was_recorded_already_failing_beats_incomplete(tmp_path: Path) -> None:
    v = judge_run_dir(_run_dir(tmp_path, "interrupted", lost=True))
    assert v.verdict == "fail"
    assert "status_not_found: 1 > 0 allowed" in v.reasons
    assert any(r.startswith("incomplete: judged 5 ops") for r in v.reasons)


def test_partial_judges_an_unfinished_run_as_if_complete_and_says_so(tmp_path: Path) -> None:
    v = judge_run_dir(_run_dir(tmp_path, "crashed", crash="RuntimeError: boom"), partial=True)
    assert (v.verdict, v.reasons) == ("pass", ())
    assert v.notes == (
        "incomplete: judged 4 ops recorded before the run was crashed; judged as complete "
        "on request (--partial)",
    )


def test_a_complete_run_is_not_incomplete(tmp_path: Path) -> None:
    assert judge_run_dir(_run_dir(tmp_path, "complete")).verdict == "pass"


def test_a_running_record_whose_runner_is_gone_is_marked_killed_and_its_temp_dir_removed(
    tmp_path: Path,
) -> None:
    ours = tmp_path / "scanproof-cluster-abc123"
    (ours / "sub").mkdir(parents=True)
    (ours / "sub" / "worker.log").write_text("x")
    theirs = tmp_path / "my-data"
    theirs.mkdir()
    run_dir = _run_dir(
        tmp_path,
        "running",
        runner=runner_identity(_dead_pid()) | {"start_ticks": 1},
        temp_dirs=(str(ours), str(theirs), "relative/scanproof-cluster-x"),
    )
    v = judge_run_dir(run_dir)
    assert "incomplete: judged 4 ops recorded before the run was killed" in v.reasons
    record = read_record(run_dir)
    assert record.status == "killed"
    assert not ours.exists()
    assert theirs.exists()  # not named like one of scanproof's: never removed
    assert any("marked killed" in w and str(ours) in w for w in record.warnings)


def test_a_running_record_whose_runner_still_runs_is_left_running(tmp_path: Path) -> None:
    ours = tmp_path / "scanproof-cluster-live"
    ours.mkdir()
    run_dir = _run_dir(tmp_path, "running", temp_dirs=(str(ours),))  # runner: this process
    v = judge_run_dir(run_dir)
    assert v.verdict == "unknown"
    assert f"while the run is still running (pid {os.getpid()})" in v.reasons[-1]
    assert read_record(run_dir).status == "running"
    assert ours.exists()


def test_a_reused_pid_is_not_mistaken_for_the_runner(tmp_path: Path) -> None:
    me = runner_identity()
    run_dir = _run_dir(tmp_path, "running", runner=me | {"start_ticks": me["start_ticks"] - 1})
    judge_run_dir(run_dir)
    assert read_record(run_dir).status == "killed"


def test_a_run_from_another_host_is_never_marked_killed(tmp_path: Path) -> None:
    runner = runner_identity(_dead_pid()) | {"host": "elsewhere"}
    run_dir = _run_dir(tmp_path, "running", runner=runner)
    v = judge_run_dir(run_dir)
    assert v.verdict == "unknown"
    assert "run.json still says running (started on elsewhere, maybe killed)" in v.reasons[-1]
    assert read_record(run_dir).status == "running"


def test_an_older_run_json_without_the_new_fields_still_reads(tmp_path: Path) -> None:
    doc = new_record(config=RunConfig()).to_json()
    for name in ("runner", "temp_dirs"):
        del doc[name]
    doc["check"] = {"retention_s": 3.0, "scan_deadline_s": 10.0}
    record = RunRecord.from_json(doc, source="run.json")
    assert record.check is not None
    assert record.check.expected_classes == ()
    assert (record.runner, record.temp_dirs) == ({}, ())


# --- the CLI: check and compare -------------------------------------------------------


def test_check_cli_exits_3_for_a_killed_run_and_0_with_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _run_dir(tmp_path, "killed")
    assert main(["check", str(run_dir)]) == 3
    out, err = capsys.readouterr()
    assert "verdict: UNKNOWN" in out
    assert "  incomplete: judged 4 ops recorded before the run was killed" in out
    assert "Traceback" not in out + err
    assert main(["check", "--partial", str(run_dir)]) == 0
    out, _ = capsys.readouterr()
    assert "verdict: PASS" in out
    assert "note: incomplete: judged 4 ops" in out


def _judged(
    root: Path, name: str, opportunities: int, reasons: list[str], **config: object
) -> Path:
    run_dir = root / name
    run_dir.mkdir()
    anomalies = {
        c: {"count": 0, "opportunities": opportunities, "excused": 0, "witnesses": [], "error": ""}
        for c in S.ANOMALY_CLASSES
    }
    verdict = {"verdict": "unknown" if reasons else "pass", "reasons": reasons}
    (run_dir / "verdict.json").write_text(json.dumps(verdict | {"anomalies": anomalies}))
    doc = {"status": "complete", "config": {"scenario": {"name": "steady"}, "seed": 0} | config}
    (run_dir / "run.json").write_text(json.dumps(doc))
    return run_dir


NO_SCAN = "no scan was accepted: 0 of 12 discovers yielded a scan id (answers: HTTP 500 x 12)"


@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_compare_refuses_a_side_without_data_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], side: str
) -> None:
    good = _judged(tmp_path, "good", 500, [])
    dead = _judged(tmp_path, "dead", 0, [NO_SCAN])
    base, cand = (dead, good) if side == "baseline" else (good, dead)
    assert main(["compare", str(base), str(cand)]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        f"scanproof compare: the {side} has no data ({dead}: {NO_SCAN}); nothing to compare: "
        "fix that run and run it again"
    ]


def test_compare_warns_on_stderr_when_the_app_or_contract_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _judged(tmp_path, "a", 500, [], app="shop.main:app", contract={"retention_s": 3.0})
    cand = _judged(tmp_path, "b", 500, [], app="tests.apps.dead:app", contract={"retention_s": 9.0})
    assert main(["compare", str(base), str(cand)]) == 0
    err = capsys.readouterr().err
    assert (
        "scanproof compare: warning: the baseline ran app 'shop.main:app' but the candidate "
        "'tests.apps.dead:app': compare like with like" in err
    )
    assert "different contracts (retention_s 3.0 vs 9.0)" in err
