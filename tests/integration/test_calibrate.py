"""Calibration against real processes: an app that states no clock is measured, never guessed.

The app (tests/integration/calibration_app.py) has no meta endpoint and scans of
a fixed real length (``app``: 1 s; ``never``: they never finish), with each
scan's state in Redis. ``scanproof calibrate`` must derive the time scale that
makes the catalogue's scan last that long, and a run of it must calibrate
first and record where every timing value came from; an app whose scans never
finish is unknown (exit 3) with the evidence, never run on a default clock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.calibrate import CATALOGUE_SCAN_S
from tests.scanproof_cli import scanproof as _scanproof

pytestmark = [pytest.mark.processes]
ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.calibration_app:app"
NEVER = "tests.integration.calibration_app:never"
SCAN_S = 1.0


@pytest.fixture
def no_meta(tmp_path: Path) -> Path:
    contract = tmp_path / "no-meta.toml"
    contract.write_text('meta_path = ""\n')
    return contract


def test_calibrate_measures_one_second_scans_and_prints_a_contract_snippet(
    tmp_path: Path, no_meta: Path
) -> None:
    out = tmp_path / "calibration"
    result = _scanproof(
        "calibrate", "--app", APP, "--contract", str(no_meta), "--workers", "2",
        "--scans", "3", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    measured = json.loads((out / "calibration.json").read_text())
    assert measured["n"] == 3
    assert measured["error"] == ""
    # each scan takes 1 s in the app; polls resolve it to ~5%, a loaded machine adds latency
    assert all(0.9 <= s <= 1.8 for s in measured["scan_seconds"]), measured["scan_seconds"]
    assert SCAN_S * 0.9 <= measured["median_s"] <= SCAN_S * 1.5
    assert measured["time_scale"] == pytest.approx(measured["median_s"] / CATALOGUE_SCAN_S)
    assert (
        SCAN_S / CATALOGUE_SCAN_S * 0.9 <= measured["time_scale"] <= SCAN_S / CATALOGUE_SCAN_S * 1.5
    )
    assert measured["scan_deadline_s"] == pytest.approx(measured["p95_s"] * 3.0)
    snippet = result.stdout[result.stdout.index("time_scale = ") :]
    assert f"time_scale = {measured['time_scale']:.6g}" in snippet
    assert "scan_deadline_s = " in snippet
    # every request is in the history, under its own proc name
    events = [json.loads(line) for line in (out / "calibrate.jsonl").read_text().splitlines()]
    kinds = {e.get("kind") for e in events if e.get("e") == "invoke"}
    assert kinds == {"discover", "status", "results"}
    assert {e["op"].split(":")[0] for e in events} == {"calibrate"}


def test_calibrate_of_scans_that_never_finish_is_exit_3_with_the_answers_seen(
    no_meta: Path,
) -> None:
    result = _scanproof(
        "calibrate", "--app", NEVER, "--contract", str(no_meta), "--workers", "2",
        "--calibrate-timeout", "2",
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("scanproof calibrate: calibration: 0 of 3 accepted scans finished")
    assert "'scanning' x 3" in line
    assert "--time-scale" in line


def test_a_run_that_cannot_calibrate_is_unknown_with_the_evidence_judged(
    tmp_path: Path, no_meta: Path
) -> None:
    from harness.run.runner import RunOptions, run_chaos
    from harness.targets.contract import load_contract
    from scenarios.catalogue import get_scenario

    out = tmp_path / "run"
    result = run_chaos(
        RunOptions(
            scenario=get_scenario("steady"),
            app=NEVER,
            workers=2,
            duration_s=3.0,
            retention_s=5.0,
            contract=load_contract(no_meta),
            calibrate_timeout_s=2.0,
            out=out,
        )
    )
    assert result.calibration_error.startswith("calibration: 0 of 3 accepted scans finished")
    assert result.verdict.verdict == "unknown"
    assert any(r.startswith("infrastructure: calibration: ") for r in result.verdict.reasons)
    record = json.loads((out / "run.json").read_text())
    assert record["calibration"]["n"] == 0
    assert record["calibration"]["error"] == result.calibration_error
    assert [s["state"] for s in record["calibration"]["scans"]] == ["scanning"] * 3
    assert not (out / "driver-0.jsonl").exists()  # the scenario never ran
    assert json.loads((out / "verdict.json").read_text())["ops"]["scans"]["accepted"] == 3


@pytest.mark.slow
def test_gate_on_an_app_that_states_no_clock_calibrates_first_and_records_the_sources(
    tmp_path: Path, no_meta: Path
) -> None:
    out = tmp_path / "run"
    result = _scanproof(
        "gate", "--app", APP, "--contract", str(no_meta), "--workers", "2",
        "--retention-s", "5", "--duration", "4", "--scenario", "steady", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calibrated: 3 scans" in result.stderr
    record = json.loads((out / "run.json").read_text())
    sources = record["check"]["sources"]
    assert sources["time_scale"]["source"] == "calibration"
    assert sources["scan_deadline_s"]["source"] == "calibration"
    assert sources["retention_s"] == {"value": 5.0, "source": "command line"}
    assert sources["poll_interval_s"]["source"] in ("scenario", "calibration")
    assert record["config"]["time_scale"] == record["calibration"]["time_scale"]
    assert record["calibration"]["n"] == 3
    assert 0.9 <= record["calibration"]["median_s"] <= 1.5


@pytest.mark.slow  # six calibrations, ~15 s
def test_scans_kept_in_one_workers_memory_are_measured_every_time(tmp_path: Path) -> None:
    """A service that keeps each scan in the creating worker's memory (tests/zoo/jobs.py,
    ``app_per_process``): the other workers answer not_found. Calibration must still reach
    the worker that knows each scan. It once polled its scans in lockstep, and two scans
    polled together alternated between two workers only, so a scan whose worker was not
    one of them was never seen finishing (2 of 8 calibrations failed after 60 s; CI failed
    an explore and a gate on it). Now a not_found is asked again at once."""
    from harness.cluster import Cluster
    from harness.run.calibrate import CalibrationSettings, calibrate
    from harness.targets.contract import load_contract

    contract = load_contract(ROOT / "tests" / "zoo" / "jobs.toml")
    settings = CalibrationSettings(timeout_s=15.0)
    with Cluster.start(app="tests.zoo.jobs:app_per_process", workers=4) as cluster:
        for i in range(6):
            measured = calibrate(cluster.router_url, contract, tmp_path / str(i), settings)
            assert measured.n == 3, measured
            # the zoo's jobs take 1-2 s; the polls resolve them to a few percent
            assert 0.9 <= measured.median_s <= 2.6, measured
