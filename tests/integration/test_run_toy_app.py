"""A chaos run end to end against a correct app that is not the reference service.

The toy app (tests/toy_apps/toy_scan.py) keeps all state in Redis keyed by scan
id and checks the owner on every read: any anomaly reported against it is a
false positive of scanproof itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.history.schema import ANOMALY_CLASSES
from tests.processes import spawn
from tests.scanproof_cli import scanproof as _scanproof

pytestmark = [pytest.mark.processes]
ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.toy_apps.toy_scan:app"


@pytest.mark.slow  # a whole run (8-18 s): the fast tier stays under 5 min on 2 cores
def test_mixed_run_on_a_correct_app_passes_and_can_be_rejudged(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _scanproof(
        "gate", "--app", TOY, "--scenario", "mixed", "--duration", "4", "--out", str(out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "pass"
    assert list(verdict["anomalies"]) == list(ANOMALY_CLASSES)
    assert verdict["anomalies"]["status_not_found"]["opportunities"] > 100
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete"
    assert record["config"]["redis"]["backend"] == "embedded"
    assert record["check"]["final_heal_ns"] > 0
    faults = [f for f in (out / "nemesis.jsonl").read_text().splitlines() if f]
    assert len(faults) == 5  # four planned faults and the heal
    # the toy app has no lookup keys: the delete found nothing and says so
    assert any("did not land" in w for w in record["warnings"])
    again = _scanproof("check", str(out))
    assert again.returncode == 0
    assert json.loads((out / "verdict.json").read_text())["anomalies"] == verdict["anomalies"]


def test_ctrl_c_leaves_a_judgeable_history_and_no_processes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = spawn(
        [sys.executable, "-m", "harness", "run", "--app", TOY, "--scenario", "steady",
         "--duration", "30", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    shard = out / "driver-0.jsonl"
    deadline = time.monotonic() + 60
    # wait for real traffic: some completed ops in the history
    while time.monotonic() < deadline:
        if shard.exists() and shard.read_text().count('"e":"complete"') >= 20:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 5  # redis, zygote or workers, router
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {[p.pid for p in alive]}"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted"
    checked = _scanproof("check", str(out))
    assert checked.returncode == 3, checked.stderr  # a correct app, interrupted: unknown
    assert "ops recorded before the run was interrupted" in checked.stdout
    assert os.path.exists(out / "ops.parquet")


def test_an_app_that_does_not_start_is_unknown_exit_3(tmp_path: Path) -> None:
    broken = tmp_path / "broken_app.py"
    broken.write_text("raise RuntimeError('this app cannot start')\n")
    result = subprocess.run(
        [sys.executable, "-m", "harness", "gate", "--app", "broken_app:app", "--scenario",
         "steady", "--duration", "2", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot start" in result.stderr
