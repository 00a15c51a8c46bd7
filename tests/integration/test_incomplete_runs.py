"""A run stopped half-way is never judged a pass: ``check`` says it is incomplete.

``scanproof run`` drives the toy app in a subprocess; once ops are recorded it
is stopped with SIGKILL (nothing of scanproof can react: ``run.json`` still says
``running`` and the cluster's temporary directory is left behind) or SIGINT
(the runner records ``interrupted``). ``scanproof check`` must then exit 3, or 1
when what was recorded already fails, with the reason, and after SIGKILL mark
the run ``killed`` and remove the stale directory. No process may outlive it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.processes import spawn
from tests.scanproof_cli import scanproof as _scanproof

pytestmark = [pytest.mark.processes]
ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.toy_apps.toy_scan:app"


def _run_until_ops_recorded(out: Path) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """Start a long run; return once run.json names its temporary directory and the
    history holds completed ops, one of them a scan seen complete (the events we wait
    for), with run.json as then."""
    proc = spawn(
        [sys.executable, "-m", "harness", "run", "--app", TOY, "--scenario", "steady",
         "--duration", "60", "--workers", "2", "--out", str(out), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    shard, run_json = out / "driver-0.jsonl", out / "run.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = shard.read_text() if shard.exists() else ""
        if text.count('"e":"complete"') >= 20 and '"body_status":"complete"' in text:
            record = json.loads(run_json.read_text())
            if record.get("temp_dirs"):
                return proc, record
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no ops were recorded within 60 s")


def _assert_all_gone(procs: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert alive == [], f"left behind: {[p.pid for p in alive]}"


@pytest.mark.slow  # a whole run (8-18 s): the fast tier stays under 5 min on 2 cores
def test_check_of_a_sigkilled_run_is_incomplete_and_cleans_up_after_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, record = _run_until_ops_recorded(out)
    assert record["status"] == "running"
    assert record["runner"]["pid"] == proc.pid  # type: ignore[index]
    (temp_dir,) = record["temp_dirs"]  # type: ignore[misc]
    assert Path(temp_dir).name.startswith("scanproof-cluster-")
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 4  # redis, zygote or workers, router
    proc.kill()
    proc.communicate(timeout=30)
    _assert_all_gone(children)
    assert Path(temp_dir).is_dir()  # nothing of scanproof could remove it
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    checked = _scanproof("check", str(out))
    assert checked.returncode in (1, 3), checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr
    reason = [ln.strip() for ln in checked.stdout.splitlines() if "incomplete:" in ln]
    assert len(reason) == 1, checked.stdout
    assert reason[0].startswith("incomplete: judged ")
    assert reason[0].endswith(" ops recorded before the run was killed")
    after = json.loads((out / "run.json").read_text())
    assert after["status"] == "killed"
    assert not Path(temp_dir).exists()
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] in ("unknown", "fail")
    assert verdict["status"] == "killed"

    partial = _scanproof("check", "--partial", str(out))
    assert partial.returncode in (0, 1), partial.stdout + partial.stderr
    assert "judged as complete on request (--partial)" in partial.stdout


def test_a_run_sigkilled_while_its_cluster_starts_leaves_its_directory_named(
    tmp_path: Path,
) -> None:
    """The cluster's directory is recorded before the cluster starts, so a SIGKILL at
    any moment leaves nothing that ``check`` cannot find and remove."""
    out = tmp_path / "run"
    proc = spawn(
        [sys.executable, "-m", "harness", "run", "--app", TOY, "--scenario", "steady",
         "--duration", "60", "--workers", "2", "--out", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run_json, deadline = out / "run.json", time.monotonic() + 60
    record: dict[str, object] = {}
    while not record.get("temp_dirs"):  # the first run.json already names it
        assert time.monotonic() < deadline, "run.json never appeared"
        assert proc.poll() is None, proc.communicate()
        try:
            record = json.loads(run_json.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.01)
    assert record.get("check") is None  # the cluster was not up yet
    (temp_dir,) = record["temp_dirs"]  # type: ignore[misc]
    proc.kill()
    proc.communicate(timeout=30)

    checked = _scanproof("check", str(out))
    assert checked.returncode == 2, checked.stdout + checked.stderr  # nothing to judge
    assert "Traceback" not in checked.stderr
    assert json.loads(run_json.read_text())["status"] == "killed"
    assert not Path(temp_dir).exists()


@pytest.mark.slow  # a whole run (8-18 s): the fast tier stays under 5 min on 2 cores
def test_check_of_an_interrupted_run_never_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, _ = _run_until_ops_recorded(out)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    _assert_all_gone(children)
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    checked = _scanproof("check", str(out))
    assert checked.returncode in (1, 3), checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr
    assert " ops recorded before the run was interrupted" in checked.stdout
