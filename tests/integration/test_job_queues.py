"""Issue 19's acceptance: a FastAPI + Celery service judged as one system under test.

The service is tests/zoo/celery_jobs (web tier ``--app``, Celery job workers
``--job-workers``, a real ``redis-server`` as broker and result backend), gated as a
user would: ``python -m harness gate`` in a subprocess, the variant in
``CELERY_JOBS_VARIANT``. Each run is 15 s of scans plus 20 s of recovery, so that
every scan started in the first 10 s is still watched when its 25 s deadline passes:

- the correct variant (late acknowledgement) passes ``steady`` and a schedule that
  SIGKILLs the job worker mid-task; no tenants and no progress are *not applicable*;
- Celery's defaults (early acknowledgement) lose the running task: ``stuck_scan``,
  its witness naming the killed job worker;
- failed tasks that make the status endpoint answer 500: ``terminal_unreadable``;
- no job worker at all: ``stuck_scan``, never a pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.history import schema as S
from harness.history.tables import load_history
from tests.scanproof_cli import ROOT, scanproof
from tests.zoo.celery_jobs.config import WORKER_COMMAND

pytestmark = [pytest.mark.processes, pytest.mark.real_redis]
SERVICE = ROOT / "tests" / "zoo" / "celery_jobs"
CONTRACT = SERVICE / "contract.toml"
STEADY = SERVICE / "steady.toml"
JOB_KILL = SERVICE / "job-kill.toml"
RUN_TIMEOUT_S = 240  # 35 s of run, Celery's start, judging, on a loaded 2-core machine
NOT_APPLICABLE = ("results_404", "zero_progress", "progress_regression", "cross_tenant_leak")


def _gate(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variant: str,
    scenario: Path,
    *,
    job_workers: bool = True,
) -> tuple[int, dict[str, Any], str, Path]:
    monkeypatch.setenv("CELERY_JOBS_VARIANT", variant)
    out = tmp_path / "run"
    argv = [
        "gate",
        "--app", "tests.zoo.celery_jobs.web:app",
        "--contract", str(CONTRACT),
        "--scenario", str(scenario),
        "--workers", "2",
        "--redis", "server",
        "--quiet",
        "--out", str(out),
    ]  # fmt: skip
    if job_workers:
        argv += ["--job-workers", WORKER_COMMAND, "--job-ready-log", "ready"]
    result = scanproof(*argv, timeout=RUN_TIMEOUT_S)
    said = f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    assert (out / "verdict.json").exists(), said
    assert "Traceback" not in said, said
    verdict: dict[str, Any] = json.loads((out / "verdict.json").read_text())
    return result.returncode, verdict, said, out


def _fails_with(code: int, verdict: dict[str, Any], said: str, name: str) -> dict[str, Any]:
    assert (code, verdict["verdict"]) == (1, "fail"), said
    judged = verdict["anomalies"][name]
    assert judged["verdict"] == "fail", said
    assert judged["count"] >= 1, said
    assert any(r.startswith(f"{name}:") for r in verdict["reasons"]), said
    return dict(judged)


def test_the_contract_and_scenarios_are_valid() -> None:
    result = scanproof("validate", "--contract", str(CONTRACT), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("progress_regression", "cross_tenant_leak", "results_404"):
        assert f"{name}: not applicable" in result.stdout, result.stdout
    for scenario in (STEADY, JOB_KILL):
        result = scanproof("validate", str(scenario), timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_the_correct_service_passes_steady_with_tenant_and_progress_classes_not_applicable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, verdict, said, out = _gate(monkeypatch, tmp_path, "correct", STEADY)
    assert (code, verdict["verdict"]) == (0, "pass"), said
    classes = verdict["anomalies"]
    for name in ("status_not_found", "stuck_scan"):
        assert classes[name]["exercised"], said
        assert classes[name]["opportunities"] > 0, said
    # Judged "not applicable", with the reason: never "0 of N, pass", never unknown.
    for name in NOT_APPLICABLE:
        judged = classes[name]
        assert judged["verdict"] == "not_applicable", (name, judged)
        assert judged["not_applicable"], (name, judged)
    report = (out / "report.md").read_text()
    junit = (out / "junit.xml").read_text()
    for name in NOT_APPLICABLE:
        assert f"{name}: not applicable" in junit, junit[-2000:]
        assert f"`{name}` | **NOT APPLICABLE**" in report, report[:3000]
    # the reasons, not bare words
    assert "tenancy" in junit
    assert "progress_field" in junit


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_late_acknowledgement_survives_a_job_worker_killed_mid_task(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, verdict, said, out = _gate(monkeypatch, tmp_path, "correct", JOB_KILL)
    log = (out / "workers" / "job-0.log").read_text()
    # a stuck task's story is in the job worker's log: each incarnation's "received"
    assert (code, verdict["verdict"]) == (0, "pass"), f"{said}\njob-0.log:\n{log[-4000:]}"
    assert verdict["anomalies"]["stuck_scan"]["opportunities"] > 0, said
    assert log.count("celery@") >= 3, log[-2000:]  # started, then restarted after each kill


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_celery_defaults_lose_the_killed_task_stuck_scan_naming_the_job_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, verdict, said, out = _gate(monkeypatch, tmp_path, "defaults", JOB_KILL)
    stuck = _fails_with(code, verdict, said, "stuck_scan")
    witness = stuck["witnesses"][0]
    assert witness["body_status"] == "pending", witness  # Celery's PENDING, for ever
    faults = load_history(out).faults.set_index(S.FAULT_ID)
    named = {faults.loc[f, S.TARGET] for f in witness["faults"]}
    assert "job:0" in named, (witness, faults)  # the job worker killed while it ran
    assert verdict["anomalies"]["terminal_unreadable"]["count"] == 0, said


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_status_endpoint_that_answers_500_for_failed_tasks_fails_terminal_unreadable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, verdict, said, _ = _gate(monkeypatch, tmp_path, "failing_500", STEADY)
    judged = _fails_with(code, verdict, said, "terminal_unreadable")
    assert judged["excused"] == 0, judged  # never excused
    assert verdict["anomalies"]["stuck_scan"]["count"] == 0, said  # unreadable, not stuck


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_with_no_job_worker_every_task_is_stuck_never_a_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, verdict, said, _ = _gate(monkeypatch, tmp_path, "stopped", STEADY, job_workers=False)
    stuck = _fails_with(code, verdict, said, "stuck_scan")
    assert stuck["count"] == stuck["opportunities"], stuck  # not one task ever finished
