"""Explore and replay on services that are not the reference: the zoo's own contracts,
no meta endpoint, a calibrated time base, and slow scans.

Each test starts real clusters (two lanes of 4 worker processes and a real
redis-server each) of a zoo variant (tests/zoo) with the ``ci`` profile
(derandomized) and every rule. The time base is calibrated (none of these
contracts states one): 3 fault-free scans, 2-3 s on jobs, ~10 s on tasks and
batches, inside the budget.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.explore.replay import ReplayOptions, replay
from harness.targets.contract import load_contract
from scenarios.stateful import ExploreConfig, ExploreResult, explore
from tests.processes import assert_all_gone, descendants, record, spawn

pytestmark = [pytest.mark.processes, pytest.mark.real_redis]
ZOO = Path(__file__).resolve().parents[1] / "zoo"
BUDGET_S = 90.0
SLACK_S = 15.0  # one minimisation run may still be under way when the budget ends


def _explore(app: str, contract: str, out: Path, **kwargs: object) -> ExploreResult:
    return explore(
        ExploreConfig(
            app=app,
            contract=load_contract(ZOO / contract),
            contract_file=str(ZOO / contract),
            redis="server",
            profile="ci",
            out=out,
            **kwargs,
        )
    )


def _found_and_replayed(
    app: str, contract: str, anomaly: str, tmp_path: Path, **kwargs: object
) -> None:
    """Found within the budget, shrunk to at most 4 steps, back at least 8 of 10 times."""
    result = _explore(app, contract, tmp_path / "explore", budget_s=BUDGET_S, **kwargs)
    assert result.found, result.summary()
    assert anomaly in result.found, result.found
    assert result.replay is not None
    assert result.replay_path is not None
    assert len(result.replay.steps) <= 4, [s.describe() for s in result.replay.steps]
    assert result.seconds <= BUDGET_S + SLACK_S, result.summary()
    assert result.replay.app == app
    assert result.replay.time_scale > 0
    assert result.replay.time_base.startswith("calibration"), result.replay.time_base
    report = replay(
        ReplayOptions(
            path=result.replay_path,
            repeat=10,
            app=app,
            contract=load_contract(ZOO / contract),
            contract_file=str(ZOO / contract),
            redis="server",
            out=tmp_path / "replay",
        )
    )
    assert report.reproduced[anomaly] >= 8, report.table()
    assert report.notes == (), report.notes  # same app, contract and (recorded) time base


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_per_process_state_is_found_shrunk_and_replays(tmp_path: Path) -> None:
    """jobs:app_per_process keeps jobs in the creating worker's memory (all rules)."""
    _found_and_replayed("tests.zoo.jobs:app_per_process", "jobs.toml", "status_not_found", tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_stale_per_process_cache_is_found_shrunk_and_replays(tmp_path: Path) -> None:
    """tasks:app_stale_cache: each worker serves what it read up to 4 s ago (8-10 s tasks)."""
    _found_and_replayed(
        "tests.zoo.tasks:app_stale_cache", "tasks.toml", "progress_regression", tmp_path
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_shared_result_slot_is_found_shrunk_and_replays(tmp_path: Path) -> None:
    """batches:app_shared_slot: a user's second batch with the same ticker overwrites the
    first one's record, whose status then carries the second's id (8-10 s batches)."""
    _found_and_replayed("tests.zoo.batches:app_shared_slot", "batches.toml", "wrong_scan", tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_correct_jobs_pass_100_examples(tmp_path: Path) -> None:
    """Issue 17 asks for 100 examples in <= 120 s; measured 87 s on the quiet machine
    (docs/BENCHMARKS.md). The budget here leaves room for a loaded CI machine."""
    result = _explore("tests.zoo.jobs:app", "jobs.toml", tmp_path, max_examples=100, budget_s=180.0)
    assert not result.found, result.summary()
    assert result.examples >= 100, result.summary()
    assert result.seeds == 7, result.summary()  # every seed ran, and passed
    assert not result.budget_spent, result.summary()


@pytest.mark.slow  # ~20 s: the fast tier stays under 5 min on 2 cores
@pytest.mark.timeout(120)
def test_progress_lines_at_least_every_5_s_and_budget_ends_clean(tmp_path: Path) -> None:
    """The CLI on a correct service with a short budget: a progress line on stderr at
    least every 5 s (calibration included), then 'nothing found in N examples', exit 0."""
    began = time.monotonic()
    command = [
        sys.executable, "-m", "harness", "explore",
        "--app", "tests.zoo.jobs:app", "--contract", str(ZOO / "jobs.toml"),
        "--redis", "server", "--budget", "15", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    stamps = [began]
    lines = []
    with spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        assert proc.stdout is not None
        for line in proc.stderr:
            stamps.append(time.monotonic())
            lines.append(line.rstrip())
        out = proc.stdout.read()
        assert proc.wait(timeout=60) == 0, (out, lines)
    stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # the first gap includes starting Python and the cluster (~2 s)
    assert max(gaps) <= 5.0, list(zip(gaps, ["(start)", *lines], strict=False))
    assert any("of 15 s budget" in line and "best: none yet" in line for line in lines), lines
    assert "nothing found in " in out, out
    assert "time base: time scale" in out, out
    assert "(calibration: 3 scans" in out, out


@pytest.mark.slow  # ~20 s
@pytest.mark.timeout(120)
def test_ctrl_c_during_a_long_wait_ends_at_once_and_leaves_no_process(tmp_path: Path) -> None:
    """SIGINT while a lane sleeps in a step (the retention seed waits half of a stated
    200 s retention after its 8-10 s task ended): exit 130 within 3 s and every
    process of both clusters gone. The step is cancelled, not waited for."""
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "harness", "explore",
        "--app", "tests.zoo.tasks:app", "--contract", str(ZOO / "tasks.toml"),
        "--time-scale", "0.05", "--scan-deadline-s", "30", "--retention-s", "200",
        "--rules", "discover,status,results,wait_complete,wait",
        "--redis", "server", "--out", str(out),
    ]  # fmt: skip
    with spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:  # progress lines every 4 s: one past the task's end
            lines.append(line.rstrip())
            elapsed = re.search(r", (\d+) s \(no budget\)$", line)
            if line.startswith("explore: seeds: ") and elapsed and int(elapsed[1]) >= 16:
                break
        assert lines, proc.wait(5)
        assert lines[-1].startswith("explore: seeds: "), (lines, proc.wait(5))
        tree = record(descendants(proc.pid))
        assert len(tree) >= 2 * 6, tree  # two clusters: Redis, router, zygote, workers
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        assert proc.wait(timeout=30) == 130, lines
        took = time.monotonic() - began
    # It was interrupted in the wait: the task was seen complete, its results not asked.
    shards = [p.read_text() for p in (out / "examples").glob("seed-*.jsonl")]
    (waited,) = [s for s in shards if '"body_status":"complete"' in s]
    assert '"kind":"results"' not in waited
    assert took <= 3.0, f"exit took {took:.1f} s after SIGINT"
    assert_all_gone(tree, seconds=2.0)
