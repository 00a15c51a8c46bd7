"""The one judging window: precedence, margins and where each value came from."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.judging.window import (
    DEADLINE_SLACK,
    Sourced,
    judging_window,
    missing_retention,
    stated_time_scale,
)

META = {"retention_s": 10.0, "scan_deadline_s": 4.0, "time_scale": 0.5}


def test_the_app_meta_alone_gets_deadline_slack_and_an_unjudged_retention_edge() -> None:
    w = judging_window(meta=META, poll_interval_s=3.0)
    assert w.time_scale.value == 0.5
    assert w.scan_deadline_s == 4.0 * DEADLINE_SLACK
    # margin = max(one poll in real seconds (1.5), a tenth of retention (1.0))
    assert (w.retention_margin_s, w.retention_s) == (1.5, 8.5)
    assert {n: s.source for n, s in w.stated.items()} == {
        "retention_s": "app meta",
        "scan_deadline_s": "app meta",
    }


def test_the_user_beats_the_contract_beats_the_meta_and_user_deadlines_get_no_slack() -> None:
    w = judging_window(
        meta=META,
        poll_interval_s=0.1,
        scan_deadline_s=7.0,
        contract_retention_s=20.0,
        contract_deadline_s=9.0,
        given_by="environment",
    )
    assert (w.stated["scan_deadline_s"].value, w.stated["scan_deadline_s"].source) == (
        7.0,
        "environment",
    )
    assert w.scan_deadline_s == 7.0
    assert (w.stated["retention_s"].value, w.stated["retention_s"].source) == (20.0, "contract")
    assert w.retention_s == 18.0


def test_the_time_scale_comes_from_the_meta_then_the_user_then_one() -> None:
    given = {"retention_s": 5.0, "scan_deadline_s": 5.0}
    assert judging_window(meta=given, poll_interval_s=1, time_scale=0.2).time_scale.value == 0.2
    plain = judging_window(meta=given, poll_interval_s=1)
    assert (plain.time_scale.value, plain.time_scale.source) == (1.0, "default")


def test_run_json_records_every_value_with_its_source() -> None:
    doc = judging_window(meta=META, poll_interval_s=3.0).to_json()
    assert doc["sources"]["time_scale"] == {"value": 0.5, "source": "app meta"}
    assert doc["sources"]["scan_deadline_s"] == {"value": 4.0, "source": "app meta"}
    assert doc["sources"]["deadline_slack"] == DEADLINE_SLACK


def test_no_stated_window_is_one_line_naming_the_options() -> None:
    with pytest.raises(UsageError, match=r"^--retention-s and --scan-deadline-s needed"):
        judging_window(meta={}, poll_interval_s=1.0)
    with pytest.raises(UsageError, match=r"^SCANPROOF_RETENTION_S needed"):
        judging_window(
            meta={"scan_deadline_s": 3},
            poll_interval_s=1.0,
            how_to_set=lambda n: f"SCANPROOF_{n.upper()}",
        )


def test_the_user_beats_the_contract_beats_the_meta_beats_calibration_for_the_clock() -> None:
    calibrated = {"time_scale": 0.006, "scan_deadline_s": 3.3, "retention_s": 99.0}
    user = {"time_scale": 0.2, "scan_deadline_s": 7.0}
    contract = {"contract_time_scale": 0.3, "contract_deadline_s": 8.0}

    def clock(meta: dict[str, float], **given: float) -> tuple[object, ...]:
        w = judging_window(
            meta=meta, poll_interval_s=3.0, retention_s=10.0, calibrated=calibrated, **given
        )
        # retention is never measured: the user's value even when calibration offers one
        assert w.stated["retention_s"].source == "command line"
        deadline = w.stated["scan_deadline_s"]
        return w.time_scale.value, w.time_scale.source, deadline.value, deadline.source

    assert clock(META, **user, **contract) == (0.2, "command line", 7.0, "command line")
    assert clock(META, **contract) == (0.3, "contract", 8.0, "contract")
    assert clock(META) == (0.5, "app meta", 4.0, "app meta")
    assert clock({}) == (0.006, "calibration", 3.3, "calibration")


def test_a_calibrated_deadline_is_judged_as_derived_without_more_slack() -> None:
    w = judging_window(
        meta={}, poll_interval_s=3.0, retention_s=10.0,
        calibrated={"time_scale": 0.006, "scan_deadline_s": 3.3},
    )  # fmt: skip
    assert w.scan_deadline_s == 3.3
    doc = w.to_json()["sources"]
    assert doc["time_scale"] == {"value": 0.006, "source": "calibration"}
    assert doc["scan_deadline_s"] == {"value": 3.3, "source": "calibration"}
    assert doc["deadline_slack"] == 1.0
    # the unjudged retention edge uses the calibrated clock: one 3 s poll is 18 ms
    assert w.retention_margin_s == 1.0


def test_calibration_never_supplies_the_retention() -> None:
    with pytest.raises(UsageError, match=r"^--retention-s needed"):
        judging_window(
            meta={}, poll_interval_s=3.0,
            calibrated={"time_scale": 0.006, "scan_deadline_s": 3.3, "retention_s": 5.0},
        )  # fmt: skip


def test_stated_time_scale_says_who_stated_it_or_none_so_the_runner_calibrates() -> None:
    assert stated_time_scale(meta={}) is None
    assert stated_time_scale(meta={"time_scale": 0}) is None  # not a time scale
    assert stated_time_scale(meta={"time_scale": 0.01}) == Sourced(0.01, "app meta")
    assert stated_time_scale(meta={"time_scale": 0.01}, contract_time_scale=0.02) == Sourced(
        0.02, "contract"
    )
    given = stated_time_scale(meta={}, time_scale=3.0, contract_time_scale=0.02,
                              given_by="environment")  # fmt: skip
    assert given == Sourced(3.0, "environment")


def test_a_missing_retention_is_refused_before_anything_is_measured() -> None:
    missing_retention(meta={"retention_s": 3.0})
    missing_retention(meta={}, contract_retention_s=3.0)
    missing_retention(meta={}, retention_s=3.0)
    with pytest.raises(UsageError, match=r"^SCANPROOF_RETENTION_S needed"):
        missing_retention(meta={}, how_to_set=lambda n: f"SCANPROOF_{n.upper()}")
