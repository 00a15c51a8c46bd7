"""Replay files record what they were found on; replay names every difference."""

from __future__ import annotations

from pathlib import Path

from harness.explore.executor import ServiceTiming, other_filters
from harness.explore.replay import ReplayOptions, differences
from harness.explore.steps import ReplayFile, Step, contract_digest, dumps_replay, parse_replay
from harness.targets.contract import Contract

FOUND = ReplayFile(
    name="jobs",
    found=("status_not_found",),
    steps=(
        Step(rule="discover", pin=0),
        Step(rule="rediscover", scan=0, pin=1, same=True, after=True),
        Step(rule="alternate", scan=0, pin=2, worker=3, seconds=50.0),
        Step(rule="wait", seconds=720.0),  # past a slow service's retention
    ),
    app="tests.zoo.jobs:app_per_process",
    contract="tests/zoo/jobs.toml",
    contract_digest=contract_digest(Contract()),
    time_scale=0.0099,
    time_base="calibration: 3 scans",
    scan_deadline_s=5.6,
    retention_s=6.0,
)
TIMING = ServiceTiming(time_scale=0.0099, retention_s=5.4, scan_deadline_s=5.6)


def test_origin_and_new_rules_round_trip() -> None:
    assert parse_replay(dumps_replay(FOUND), source="f") == FOUND


def test_same_app_contract_and_time_base_has_no_notes() -> None:
    options = ReplayOptions(path=Path("f"), app=FOUND.app, contract=Contract())
    assert differences(FOUND, options, TIMING) == ()


def test_another_app_contract_and_clock_are_each_named() -> None:
    other = Contract(retention_s=9.0)
    options = ReplayOptions(
        path=Path("f"), app="tests.zoo.jobs:app", contract=other, contract_file="b.toml"
    )
    timing = ServiceTiming(time_scale=0.02, retention_s=5.4, scan_deadline_s=5.6, source="x")
    notes = differences(FOUND, options, timing)
    assert len(notes) == 3, notes
    assert "found on app tests.zoo.jobs:app_per_process; replayed on tests.zoo.jobs:app" in notes
    assert any("replayed with b.toml" in n for n in notes)
    assert any("replayed at 0.02 (x)" in n for n in notes)


def test_check_config_carries_the_contracts_choices() -> None:
    timing = ServiceTiming(
        time_scale=0.01,
        retention_s=5.0,
        scan_deadline_s=3.0,
        progress=False,
        lost_state_excused=False,
    )
    config = timing.check_config()
    assert (config.progress, config.lost_state_excused) == (False, False)


def test_rediscover_with_other_filters_never_repeats_them() -> None:
    assert all(other_filters(f) != f for f in ("", "BTC", "ETH"))
