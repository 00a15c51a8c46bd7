"""Calibration's arithmetic: from measured scans to a time scale, a deadline and a poll floor.

Pure functions only (no cluster): :func:`harness.run.calibrate.derive`, the
give-up rule of the polling phase, run.json's calibration block, the contract
snippet, and the runner's use of them. The measuring phase against real
processes is tested in tests/integration/test_calibrate.py.
"""

from __future__ import annotations

import doctest
import json
import math
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import harness.run.calibrate as calibrate_module
from harness.errors import UsageError
from harness.history.record import RunRecord, new_record
from harness.judging.window import judging_window
from harness.run import runner
from harness.run.calibrate import (
    CATALOGUE_SCAN_S,
    Calibration,
    CalibrationError,
    CalibrationSettings,
    ScanTiming,
    _Phase,
    derive,
    percentile,
)
from harness.run.plan import DEFAULT_SCAN_S
from harness.run.scenario import Scenario
from harness.targets.contract import Contract


def _scan(seconds: float | None, state: str = "complete", i: int = 0) -> ScanTiming:
    return ScanTiming(scan_id=f"s{i}", tenant="t", seconds=seconds, state=state)


def _derived(*seconds: float, latency: float = 0.004, slack: float = 3.0) -> Calibration:
    scans = [_scan(s, i=i) for i, s in enumerate(seconds)]
    return derive(scans, latencies=[latency, latency * 3, latency], slack=slack)


def test_the_docstring_examples_hold() -> None:
    result = doctest.testmod(calibrate_module, optionflags=doctest.ELLIPSIS)
    assert (result.attempted >= 4, result.failed) == (True, 0)


def test_the_catalogue_scan_is_the_planners_one_constant() -> None:
    assert CATALOGUE_SCAN_S == DEFAULT_SCAN_S == 165.0


def test_a_two_second_scan_gives_the_scale_that_makes_the_catalogue_scan_two_seconds() -> None:
    c = _derived(2.0, 2.0, 2.0)
    assert c.time_scale * CATALOGUE_SCAN_S == pytest.approx(2.0)
    c = _derived(1200.0, 1100.0, 1300.0)  # twenty-minute scans: a scale above 1
    assert c.time_scale == pytest.approx(1200.0 / CATALOGUE_SCAN_S)
    assert c.time_scale > 7


def test_median_p95_spread_and_n_come_from_the_finished_scans_only() -> None:
    scans = [_scan(1.0, i=0), _scan(3.0, i=1), _scan(2.0, i=2), _scan(None, "scanning", i=3)]
    c = derive(scans, latencies=[0.01])
    assert (c.n, c.median_s, c.spread_s) == (3, 2.0, 2.0)
    assert c.p95_s == pytest.approx(2.9)  # linear between the two slowest
    assert len(c.scans) == 4  # the unfinished one is kept as evidence


def test_the_deadline_is_p95_times_the_stated_slack() -> None:
    assert _derived(1.0, 1.0, 1.0, slack=3.0).scan_deadline_s == pytest.approx(3.0)
    c = _derived(1.0, 2.0, slack=2.0)
    assert c.scan_deadline_s == pytest.approx(c.p95_s * 2.0)
    assert c.slack == 2.0


def test_the_poll_floor_is_two_median_answer_latencies() -> None:
    c = _derived(1.0, latency=0.005)  # latencies 5, 15, 5 ms: median 5 ms
    assert c.answer_latency_s == pytest.approx(0.005)
    assert c.poll_floor_s == pytest.approx(0.010)


def test_no_finished_scan_is_an_error_naming_the_last_answers_never_a_default() -> None:
    with pytest.raises(CalibrationError, match=r"0 of 2 accepted scans finished.*'scanning' x 2"):
        derive([_scan(None, "scanning"), _scan(None, "scanning", i=1)], latencies=[])
    with pytest.raises(CalibrationError, match=r"'not_found' x 1"):
        derive([_scan(None, "not_found")], latencies=[])


def test_percentile_interpolates_and_refuses_nothing() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert percentile([1.0, 2.0], 0) == 1.0
    assert percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ValueError, match="percentile of no values"):
        percentile([], 50)


def test_give_up_waits_for_the_cap_until_half_the_scans_finished_then_slack_times_the_slowest() -> (
    None
):
    phase = _Phase(settings=CalibrationSettings(timeout_s=300.0, slack=3.0), started=100.0)
    phase.accepted = 3
    assert phase.give_up_at(100.0) == 400.0
    phase.finished.append(2.0)  # 1 of 3: not yet half
    assert phase.give_up_at(100.0) == 400.0
    phase.finished.append(1.0)  # 2 of 3: a scan slower than 3 x 2 s is late
    assert phase.give_up_at(100.5) == pytest.approx(106.5)


def test_run_json_block_is_strict_json_with_every_measurement() -> None:
    c = _derived(1.0, 1.2, 1.1)
    doc = c.to_json()
    assert doc["scan_seconds"] == [1.0, 1.2, 1.1]
    assert (doc["n"], doc["median_s"], doc["slack"]) == (3, 1.1, 3.0)
    assert doc["catalogue_scan_s"] == CATALOGUE_SCAN_S
    assert doc["settings"]["timeout_s"] == CalibrationSettings().timeout_s
    assert [s["state"] for s in doc["scans"]] == ["complete"] * 3
    json.dumps(doc, allow_nan=False)
    failed = Calibration(
        scans=(_scan(None, "scanning"),), n=0, median_s=math.nan, p95_s=math.nan,
        spread_s=math.nan, time_scale=math.nan, scan_deadline_s=math.nan,
        poll_floor_s=math.nan, answer_latency_s=math.nan, slack=3.0, error="why",
    )  # fmt: skip
    doc = failed.to_json()
    assert (doc["median_s"], doc["time_scale"], doc["error"]) == (None, None, "why")
    json.dumps(doc, allow_nan=False)


def test_the_snippet_is_a_contract_fragment_with_the_derived_values() -> None:
    c = _derived(1.0, 1.2, 1.1)
    parsed = tomllib.loads(c.snippet())
    assert parsed["time_scale"] == pytest.approx(c.time_scale, rel=1e-5)
    assert parsed["scan_deadline_s"] == pytest.approx(c.scan_deadline_s, rel=1e-3)


def test_run_json_keeps_the_calibration_and_old_files_without_it_still_read() -> None:
    c = _derived(1.0, 1.2, 1.1)
    record = new_record(config=runner.RunConfig(app="mypkg.main:app")).but(calibration=c.to_json())
    doc = json.loads(json.dumps(record.to_json()))
    assert doc["format"] == 1  # a new key, not a new format: old readers ignore it
    again = RunRecord.from_json(doc, source="run.json")
    assert again.calibration == c.to_json()
    del doc["calibration"]
    assert RunRecord.from_json(doc, source="run.json").calibration is None
    with pytest.raises(UsageError, match=r"calibration must be an object"):
        RunRecord.from_json({**doc, "calibration": [1]}, source="run.json")


# --- the runner's use of calibration ---------------------------------------------------


def test_a_contract_states_the_clock_by_time_scale_or_by_a_typical_scan_length() -> None:
    assert runner.contract_time_scale(Contract()) is None
    stated = cast(Any, SimpleNamespace(time_scale=0.02, scan_s=99.0))
    assert runner.contract_time_scale(stated) == 0.02
    by_length = cast(Any, SimpleNamespace(time_scale=None, scan_s=3.3))
    assert runner.contract_time_scale(by_length) == pytest.approx(3.3 / CATALOGUE_SCAN_S)


def test_the_run_never_polls_faster_than_the_service_answers() -> None:
    scenario = Scenario(name="s", poll_interval=3.0)
    assert runner._poll_interval(scenario, None) == 3.0
    quick = _derived(1.65, latency=0.001)  # scale 0.01: 3 service s = 30 ms > floor 2 ms
    assert runner._poll_interval(scenario, quick) == 3.0
    slow_answers = _derived(1.65, latency=0.05)  # floor 100 ms = 10 service s
    assert runner._poll_interval(scenario, slow_answers) == pytest.approx(10.0)


def test_calibrated_values_are_played_like_the_users_own_and_stated_ones_untouched() -> None:
    options = runner.RunOptions(scenario=Scenario(name="s"), app="mypkg.main:app")
    measured = judging_window(
        meta={}, poll_interval_s=3.0, retention_s=5.0,
        calibrated={"time_scale": 0.006, "scan_deadline_s": 3.3},
    )  # fmt: skip
    played = runner._played(options, measured)
    assert (played.time_scale, played.scan_deadline_s) == (0.006, 3.3)
    stated = judging_window(
        meta={"time_scale": 0.01, "scan_deadline_s": 2.0}, poll_interval_s=3.0, retention_s=5.0
    )
    assert runner._played(options, stated) is options


def test_calibration_settings_take_the_options_timeout_and_scans() -> None:
    options = runner.RunOptions(
        scenario=Scenario(name="s"), calibrate_timeout_s=12.0, calibrate_scans=5
    )
    settings = runner.calibration_settings(options)
    assert (settings.timeout_s, settings.scans) == (12.0, 5)
    plain = runner.calibration_settings(runner.RunOptions(scenario=Scenario(name="s")))
    assert plain == CalibrationSettings()


def test_an_app_that_states_its_clock_is_never_calibrated(tmp_path: Path) -> None:
    """The reference service's meta states its time scale: no calibration, no shard."""
    options = runner.RunOptions(scenario=Scenario(name="s"))
    meta = {"time_scale": 0.01, "retention_s": 3.0}
    assert runner._time_base(options, "http://127.0.0.1:9", meta, tmp_path, None) is None
    given = runner.RunOptions(scenario=Scenario(name="s"), app="x:app", time_scale=0.5)
    assert (
        runner._time_base(given, "http://127.0.0.1:9", {"retention_s": 3.0}, tmp_path, None) is None
    )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_retention_is_refused_before_calibration_starts(tmp_path: Path) -> None:
    options = runner.RunOptions(scenario=Scenario(name="s"), app="x:app")
    with pytest.raises(UsageError, match=r"^--retention-s needed"):
        runner._time_base(options, "http://127.0.0.1:9", {}, tmp_path, None)
    assert list(tmp_path.iterdir()) == []
