"""What a contract decides for the judge: lost state, progress, answers it cannot read."""

from __future__ import annotations

import dataclasses

import pytest

from harness.errors import UsageError
from harness.judging.checkers import CheckConfig, judge
from harness.targets.contract import contract_from_mapping
from tests.unit.history_catalogue import Hist, healthy_scan

CFG = CheckConfig(retention_s=3.0, scan_deadline_s=2.0)


def _lost_scan_said_not_found() -> Hist:
    h = healthy_scan(Hist())
    h.fault("delete_keys", at=120, destructive=True, scans="s1")
    h.status("alice", "s1", "not_found", at=150)
    return h


def test_lost_state_is_excused_by_default() -> None:
    r = judge(_lost_scan_said_not_found().build(), CFG).classes["status_not_found"]
    assert (r.count, r.excused) == (0, 1)


def test_a_contract_that_promises_to_notice_lost_state_counts_the_answer() -> None:
    strict = dataclasses.replace(CFG, lost_state_excused=False)
    verdict = judge(_lost_scan_said_not_found().build(), strict)
    r = verdict.classes["status_not_found"]
    assert (r.count, r.excused) == (1, 0)
    assert verdict.verdict == "fail"


def test_without_a_progress_field_the_progress_classes_are_not_judged_nor_expected() -> None:
    h = healthy_scan(Hist())  # its polls carry progress; a 0/0 one would fail zero_progress
    h.status("alice", "s1", "scanning", at=60, progress=(0, 0))
    with_progress = judge(h.build(), CFG, expected_classes=["zero_progress"])
    assert with_progress.classes["zero_progress"].count == 1
    none = dataclasses.replace(CFG, progress=False)
    verdict = judge(h.build(), none, expected_classes=["zero_progress", "status_not_found"])
    for name in ("zero_progress", "progress_regression"):
        r = verdict.classes[name]
        assert (r.count, r.opportunities, r.expected) == (0, 0, False), name
    assert verdict.verdict == "pass", verdict.reasons


def test_answers_the_contract_cannot_read_make_the_verdict_unknown() -> None:
    verdict = judge(
        healthy_scan(Hist()).build(),
        CFG,
        not_understood=("12 of 40 status answers carried words the contract does not list",),
    )
    assert verdict.verdict == "unknown"
    assert verdict.reasons == (
        "not understood: 12 of 40 status answers carried words the contract does not list",
    )


def test_lost_state_excused_reads_from_toml_as_a_boolean_only() -> None:
    assert not contract_from_mapping({"lost_state_excused": False}).lost_state_excused
    with pytest.raises(UsageError, match="lost_state_excused' must be true or false, got 'no'"):
        contract_from_mapping({"lost_state_excused": "no"}, source="c.toml")
