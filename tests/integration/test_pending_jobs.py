"""A Celery-shaped task API (tests/zoo/pending_jobs.py), gated as a user would.

No tenants, no progress, no results endpoint, PENDING for queued, running and
never-issued ids alike, a create that needs a fixed ``type``: the contract says so
(tests/zoo/pending_jobs.toml). The correct service passes with the classes its shape
makes meaningless *not applicable* (never "0 of N, pass"), the never-issued probes
judged; the variant whose failed tasks make the status endpoint answer 500 fails
``terminal_unreadable``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.processes, pytest.mark.real_redis]
ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "tests" / "zoo" / "pending_jobs.toml"
RUN_TIMEOUT_S = 180
# time_scale 0.05 (the contract): 7 s of scans, then 8 s in which every scan's
# 6 s deadline passes while it is still polled. Seed 0 asks four scans to fail.
SCENARIO = """
name = "pending-jobs"
tenants = 3
scans_per_tenant = 3
duration = 140.0
recovery = 160.0
probes = 1.0
failing = 0.8
"""
NOT_APPLICABLE = ("results_404", "zero_progress", "progress_regression", "cross_tenant_leak")


def _gate(app: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    scenario = tmp_path / "pending-jobs.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    argv = [
        sys.executable, "-m", "harness", "gate",
        "--app", f"tests.zoo.pending_jobs:{app}",
        "--contract", str(CONTRACT),
        "--scenario", str(scenario),
        "--workers", "2",
        "--redis", "server",
        "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=ROOT
    )
    said = result.stdout[-3000:] + result.stderr[-2000:]
    assert (out / "verdict.json").exists(), said
    return result, json.loads((out / "verdict.json").read_text())


@pytest.mark.slow  # a whole run (~15 s): the fast tier stays under 5 min on 2 cores
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_correct_task_api_passes_with_its_meaningless_classes_not_applicable(
    tmp_path: Path,
) -> None:
    result, verdict = _gate("app", tmp_path)
    said = result.stdout[-3000:] + result.stderr[-2000:]
    assert (result.returncode, verdict["verdict"]) == (0, "pass"), said
    classes = verdict["anomalies"]
    for name in NOT_APPLICABLE:
        assert classes[name]["verdict"] == "not_applicable", (name, classes[name])
        assert classes[name]["not_applicable"], name  # with the reason
        assert classes[name]["expected"] is False
    # judged, not skipped: never-issued ids read PENDING (wrong_scan), finished tasks
    # stay readable (terminal_unreadable), every task finished by its deadline
    for name in ("status_not_found", "wrong_scan", "stuck_scan", "terminal_unreadable"):
        assert classes[name]["verdict"] == "pass", (name, classes[name])
        assert classes[name]["opportunities"] > 0, (name, classes[name])
    assert verdict["ops"]["scans"]["seen_failed"] > 0  # fail_body reached the tasks
    report = (tmp_path / "run" / "report.md").read_text()
    assert "4 not applicable" in report.splitlines()[0]
    assert 'tenancy = "none"' in report
    suite = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert sorted(skipped) == sorted(NOT_APPLICABLE)


@pytest.mark.slow  # a whole run (~15 s): the fast tier stays under 5 min on 2 cores
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_failed_tasks_answering_500_fail_terminal_unreadable(tmp_path: Path) -> None:
    result, verdict = _gate("app_failing_500", tmp_path)
    said = result.stdout[-3000:] + result.stderr[-2000:]
    assert (result.returncode, verdict["verdict"]) == (1, "fail"), said
    unreadable = verdict["anomalies"]["terminal_unreadable"]
    assert unreadable["verdict"] == "fail", unreadable
    assert all("HTTP 500" in w["reason"] for w in unreadable["witnesses"]), unreadable
    assert unreadable["excused"] == 0
    assert any(r.startswith("terminal_unreadable:") for r in verdict["reasons"])
    # the 500s are this class alone: the tasks did finish, none reads as stuck
    assert verdict["anomalies"]["stuck_scan"]["count"] == 0
