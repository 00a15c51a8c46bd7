"""What a locust master hands its workers, and the settings a user sets for locust."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run.plan import DEFAULT_SCAN_S
from harness.targets.contract import load_contract
from scenarios.locust._workload import (
    adopt_settings,
    resolve_timing,
    settings_from_env,
    settings_message,
)

JOBS = Path(__file__).resolve().parents[1] / "zoo" / "jobs.toml"


def test_a_worker_adopts_the_masters_contract_time_values_and_workload() -> None:
    master = settings_from_env(
        {
            "SCANPROOF_RUN_DIR": "/m",
            "SCANPROOF_SEED": "9",
            "SCANPROOF_SCENARIO": "cross-tenant",
            "SCANPROOF_CONTRACT": str(JOBS),
            "SCANPROOF_TIME_SCALE": "0.03",
            "SCANPROOF_KEEP_ALIVE": "0",
        }
    )
    worker = adopt_settings(
        settings_from_env({"SCANPROOF_RUN_DIR": "/w"}), settings_message(master)
    )
    assert worker.contract == load_contract(JOBS)
    assert worker.contract.discover_path == "/jobs"
    assert (worker.seed, worker.workload, dict(worker.fallback)) == (
        9,
        master.workload,
        {"time_scale": 0.03},
    )
    assert worker.keep_alive is False
    assert worker.contract_file == str(JOBS)
    assert worker.run_dir == Path("/w")  # a worker writes nothing of its own


def test_keep_alive_is_on_unless_turned_off_and_refuses_other_words() -> None:
    assert settings_from_env({}).keep_alive is True
    assert settings_from_env({"SCANPROOF_KEEP_ALIVE": "0"}).keep_alive is False
    with pytest.raises(UsageError, match=r"SCANPROOF_KEEP_ALIVE='no': must be 1 .* or 0"):
        settings_from_env({"SCANPROOF_KEEP_ALIVE": "no"})


def test_the_contracts_scan_s_sets_the_time_scale_when_nobody_else_does(tmp_path: Path) -> None:
    contract = tmp_path / "c.toml"
    contract.write_text("scan_deadline_s = 6\nscan_s = 1.5\n" + JOBS.read_text())
    settings = settings_from_env({"SCANPROOF_CONTRACT": str(contract)})
    timing = resolve_timing({}, settings.fallback, contract=settings.contract)
    assert timing.time_scale == pytest.approx(1.5 / DEFAULT_SCAN_S)
    assert timing.window.to_json()["sources"]["time_scale"]["source"] == "contract"
    # the user's own value still wins
    mine = resolve_timing({}, {"time_scale": 0.5}, contract=settings.contract)
    assert mine.time_scale == 0.5
