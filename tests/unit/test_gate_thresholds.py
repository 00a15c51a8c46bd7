"""Gate thresholds by count, rate and 95% upper bound: parsing, deciding, stored forms."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import harness.judging.thresholds as thresholds_module
from harness.errors import UsageError
from harness.judging.checkers import judge
from harness.judging.thresholds import Limit, load_thresholds, parse_thresholds
from harness.judging.verdict import ClassResult, Verdict, decide
from tests.unit.history_catalogue import Hist, healthy_scan
from tests.unit.reports.run_catalogue import CFG


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(thresholds_module).failed == 0


def _seventy_eight_percent_lost() -> Hist:
    """One scan polled 100 times while live: 78 answers say not_found."""
    h = Hist()
    h.discover("alice", "s1", at=0)
    for i in range(99):
        word = "scanning" if i % 5 == 0 or i == 98 else "not_found"
        h.status("alice", "s1", word, at=10 + i, progress=(1, 14) if word == "scanning" else None)
    h.status("alice", "s1", "complete", at=200, progress=(14, 14))
    h.results("alice", "s1", 200, at=210)
    return h


def test_a_rate_threshold_fails_a_78_percent_class_that_a_count_threshold_passes() -> None:
    history = _seventy_eight_percent_lost().build()
    by_count = judge(history, CFG, thresholds={"status_not_found": 2000})
    lost = by_count.classes["status_not_found"]
    assert (lost.count, lost.opportunities) == (78, 100)
    assert by_count.verdict == "pass"
    by_rate = judge(history, CFG, thresholds={"status_not_found": Limit(count=None, rate=0.01)})
    assert by_rate.verdict == "fail"
    assert by_rate.classes["status_not_found"].verdict == "fail"
    assert by_rate.reasons == ("status_not_found: rate 78% (78 of 100) > 1% allowed",)
    both = judge(history, CFG, thresholds={"status_not_found": Limit(count=2000, rate=0.01)})
    assert both.verdict == "fail"  # every limit a class names must hold


def test_the_upper_bound_limit_asks_for_enough_evidence() -> None:
    few = ClassResult(name="results_404", count=0, opportunities=20)  # 95% CI [0, 16.1%]
    many = ClassResult(name="results_404", count=0, opportunities=400)  # [0, 0.95%]
    limit = {"results_404": Limit(count=None, ci95_upper=0.05)}
    assert decide([few], thresholds=limit).verdict == "fail"
    assert (
        "95% interval upper end 16.11% > 5% allowed" in decide([few], thresholds=limit).reasons[0]
    )
    assert decide([many], thresholds=limit).verdict == "pass"


def test_a_class_with_no_opportunity_breaks_no_rate_limit() -> None:
    idle = ClassResult(name="wrong_scan", count=0, opportunities=0)
    assert decide([idle], thresholds={"wrong_scan": Limit(count=None, rate=0.0)}).verdict == "pass"


def test_limits_survive_verdict_json_and_the_run_json_form() -> None:
    r = ClassResult(name="status_not_found", count=78, opportunities=100)
    v = decide([r], thresholds={"status_not_found": Limit(count=None, rate=0.01)})
    doc = v.to_json()
    assert doc["anomalies"]["status_not_found"]["limit"] == {"rate": 0.01}
    assert doc["anomalies"]["status_not_found"]["threshold"] is None
    assert doc["anomalies"]["wrong_scan"]["limit"] == 0
    back = Verdict.from_json(doc, source="verdict.json").classes["status_not_found"]
    assert (back.verdict, back.limit) == ("fail", Limit(count=None, rate=0.01))
    # run.json keeps a limit as dataclasses.asdict wrote it; decide reads that form
    stored = {"status_not_found": {"count": None, "rate": 0.01, "ci95_upper": None}}
    assert decide([r], thresholds=stored).verdict == "fail"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ({"rate": 1.5}, "status_not_found.rate = 1.5 must be a fraction from 0 to 1"),
        ({"rate": "1%"}, "must be a fraction"),
        ({"ratio": 0.1}, "has key 'ratio'; use count, rate or ci95_upper"),
        ({}, "has no limit"),
        (-1, "= -1 must be a whole number >= 0"),
        (True, "must be a whole number >= 0 or a table"),
        (0.5, "must be a whole number (a count) or a table"),
        ({"count": 2.5}, ".count = 2.5 must be a whole number"),
    ],
)
def test_bad_limits_are_one_line_naming_the_value(value: object, needle: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        parse_thresholds({"status_not_found": value}, source="t.toml")
    assert needle in str(info.value)
    assert str(info.value).startswith("t.toml: threshold status_not_found")


def test_pyproject_and_a_thresholds_file_are_read_the_same_way(tmp_path: Path) -> None:
    body = (
        "status_not_found = { rate = 0.01 }\n"
        "zero_progress = 3\n"
        "results_404 = { ci95_upper = 0.05, count = 1 }\n"
    )
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[tool.scanproof.gate]\n" + body + "\n[tool.scanproof.gate.coverage]\nscanning = 1\n"
    )
    file = tmp_path / "limits.toml"
    file.write_text(body)
    from_pyproject = load_thresholds(None, pyproject=pyproject)
    assert from_pyproject == load_thresholds(file, pyproject=tmp_path / "absent.toml")
    assert from_pyproject == {
        "status_not_found": Limit(count=None, rate=0.01),
        "zero_progress": Limit(count=3),
        "results_404": Limit(count=1, ci95_upper=0.05),
    }
    assert load_thresholds(None, pyproject=tmp_path / "absent.toml") is None
    (tmp_path / "other.toml").write_text("[tool.black]\nline-length = 9\n")
    assert load_thresholds(None, pyproject=tmp_path / "other.toml") is None


def test_an_unknown_class_names_the_valid_ones(tmp_path: Path) -> None:
    file = tmp_path / "limits.toml"
    file.write_text("status_lost = 3\n")
    with pytest.raises(
        UsageError, match=r"unknown anomaly class 'status_lost'.*valid: status_not_found"
    ):
        load_thresholds(file)


def test_healthy_history_passes_every_kind_of_limit() -> None:
    h = healthy_scan(Hist()).build()
    limits = {"status_not_found": Limit(count=None, rate=0.0), "zero_progress": 0}
    assert judge(h, CFG, thresholds=limits).verdict == "pass"
