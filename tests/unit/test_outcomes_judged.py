"""Recorded outcomes, judged in canonical words: results_404, the results half of
status_regression, cross_tenant_leak, and what the contract did not understand.

Histories are small hand-written ops tables (times in ms) whose answers carry the
canonical states the recording clients write (see docs/contract.md)."""

from __future__ import annotations

import doctest
import itertools
from typing import Any

import pandas as pd
import pytest

import harness.judging.understanding as understanding_module
from harness.history import schema as S
from harness.history.tables import History
from harness.judging.checkers import CheckConfig, judge
from harness.judging.understanding import understand
from harness.judging.verdict import ClassResult
from harness.targets.contract import Contract, contract_from_mapping

MS = 1_000_000
CONFIG = CheckConfig(retention_s=1.0, scan_deadline_s=5.0)


class Ops:
    """A tiny ops-table builder: every column set, canonical words given explicitly."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._seq = itertools.count()

    def add(self, kind: str, tenant: str, scan: str, at: float, **cols: Any) -> Ops:
        row: dict[str, Any] = {
            S.OP: f"t:{next(self._seq)}", S.PROC: "t", S.KIND: kind, S.TENANT: tenant,
            S.SCAN_ID: scan, S.FILTERS: "", S.PINNED_WORKER: -1, S.T_INVOKE: int(at * MS),
            S.T_COMPLETE: int((at + 10) * MS), S.OUTCOME: "ok", S.WORKER: 0,
            S.HTTP_STATUS: 200, S.BODY_STATUS: "", S.RAW_STATUS: "", S.COMPLETED: -1,
            S.TOTAL: -1, S.FOUND: -1, S.HAS_PROGRESS: False, S.ITEMS: -1,
            S.BODY_SCAN_IDS: "", S.BODY_USER_IDS: "", S.ERROR: "",
        }  # fmt: skip
        row.update(cols)
        self.rows.append(row)
        return self

    def scan(self, tenant: str = "alice", scan: str = "s1", at: float = 0) -> Ops:
        """Accepted, polled scanning then complete, results complete."""
        self.add("discover", tenant, scan, at, http_status=201)
        self.add("status", tenant, scan, at + 100, body_status="scanning", raw_status="queued")
        self.add("status", tenant, scan, at + 200, body_status="complete", raw_status="done")
        return self.add("results", tenant, scan, at + 300, body_status="complete", items=2)

    def history(self) -> History:
        ops = pd.DataFrame(self.rows, columns=list(S.OP_COLUMNS))
        return History(ops=ops, faults=pd.DataFrame(columns=list(S.FAULT_COLUMNS)))

    def judged(self, name: str) -> ClassResult:
        return judge(self.history(), CONFIG).classes[name]


# --- results_404 --------------------------------------------------------------------


@pytest.mark.parametrize("code", [404, 410])
def test_results_not_found_while_live_is_results_404_whatever_the_code(code: int) -> None:
    # 410 is not_found for a contract with codes.results_not_found = [410]
    h = Ops().scan()
    h.add("results", "alice", "s1", 400, http_status=code, body_status="not_found")
    r = h.judged("results_404")
    assert (r.count, r.opportunities) == (1, 2)
    assert f"HTTP {code}" in r.witnesses[0].reason


def test_a_results_404_that_the_contract_does_not_call_not_found_is_no_anomaly() -> None:
    # e.g. codes.results_not_found = [] : a 404 with no word has no state
    h = Ops().scan()
    h.add("results", "alice", "s1", 400, http_status=404, body_status="")
    assert h.judged("results_404").count == 0


def test_results_not_found_after_retention_is_a_correct_expiry() -> None:
    h = Ops().scan()
    # last proof unfinished at 100 ms, retention 1 s: live until 1100 ms
    h.add("results", "alice", "s1", 1200, http_status=404, body_status="not_found")
    assert h.judged("results_404").count == 0


def test_a_results_pending_answer_is_proof_the_scan_is_unfinished_not_a_completion() -> None:
    h = Ops().add("discover", "alice", "s1", 0)
    h.add("results", "alice", "s1", 100, http_status=202, body_status="scanning")
    h.add("results", "alice", "s1", 200, http_status=404, body_status="not_found")
    assert h.judged("results_404").count == 1


def test_a_terminal_results_answer_finishes_the_scan() -> None:
    # results complete at 300 ms is the first terminal answer: the live window is
    # counted from the last scanning answer before it (100 ms), not from the stale
    # scanning answer at 400 ms, so the 404 at 1200 ms is a correct expiry
    h = Ops().add("discover", "alice", "s1", 0)
    h.add("status", "alice", "s1", 100, body_status="scanning")
    h.add("results", "alice", "s1", 300, body_status="complete")
    h.add("status", "alice", "s1", 400, body_status="scanning")
    h.add("results", "alice", "s1", 1200, http_status=404, body_status="not_found")
    assert h.judged("results_404").count == 0


# --- status_regression, results half -------------------------------------------------


def test_results_scanning_after_results_complete_is_a_status_regression() -> None:
    h = Ops().scan()
    h.add("results", "alice", "s1", 500, http_status=202, body_status="scanning", worker=2)
    h.add("results", "alice", "s1", 600, body_status="complete")
    r = h.judged("status_regression")
    assert r.count == 1
    assert r.witnesses[0].reason == (
        "results said scanning (HTTP 202) after a fetch that had said complete"
    )
    assert r.witnesses[0].worker == 2


def test_results_scanning_before_the_first_complete_is_no_regression() -> None:
    h = Ops().add("discover", "alice", "s1", 0)
    h.add("results", "alice", "s1", 100, http_status=202, body_status="scanning")
    h.add("results", "alice", "s1", 200, body_status="complete")
    h.add("results", "alice", "s1", 300, body_status="complete")
    r = h.judged("status_regression")
    assert (r.count, r.opportunities) == (0, 1)


def test_a_2xx_results_answer_with_a_running_word_counts_as_scanning() -> None:
    # a job API whose result endpoint answers 200 {"job": {"state": "running"}}
    h = Ops().scan()
    h.add("results", "alice", "s1", 500, http_status=200, body_status="scanning")
    assert h.judged("status_regression").count == 1


# --- cross_tenant_leak ----------------------------------------------------------------


def test_refusals_by_word_or_code_are_opportunities_not_leaks() -> None:
    h = Ops().scan()
    h.add("status", "mallory", "s1", 150, body_status="not_found", body_scan_ids="s1")
    h.add("results", "mallory", "s1", 160, http_status=404, body_status="not_found")
    h.add("results", "mallory", "s1", 170, http_status=403, body_status="refused")
    h.add("status", "mallory", "s1", 180, http_status=200, body_status="refused")
    r = h.judged("cross_tenant_leak")
    assert (r.count, r.opportunities) == (0, 4)


def test_other_4xx_to_a_non_owner_are_neither_leak_nor_refusal() -> None:
    h = Ops().scan()
    h.add("status", "mallory", "s1", 150, http_status=429, body_status="failed")
    h.add("results", "mallory", "s1", 160, http_status=401, body_status="")  # no refused code
    h.add("results", "mallory", "s1", 170, http_status=400, body_scan_ids="s1")  # an echo
    r = h.judged("cross_tenant_leak")
    assert (r.count, r.opportunities) == (0, 0)


@pytest.mark.parametrize(
    ("cols", "reason"),
    [
        ({"body_status": "complete"}, "got HTTP 200 'complete'"),
        ({"body_status": ""}, "got HTTP 200 ''"),  # a 2xx with no state is no refusal
        (
            {"http_status": 404, "body_status": "not_found", "body_user_ids": "alice"},
            "carrying alice's user id",
        ),
        ({"http_status": 403, "body_status": "refused", "items": 3}, "carrying 3 items"),
        (
            {"http_status": 404, "body_status": "not_found", "body_scan_ids": "s1,s2"},
            "carrying alice's scan s2",
        ),
    ],
)
def test_a_non_owner_answer_that_is_a_2xx_or_carries_the_owners_data_is_a_leak(
    cols: dict[str, Any], reason: str
) -> None:
    h = Ops().scan().scan(scan="s2", at=1000)
    h.add("status", "mallory", "s1", 150, **cols)
    r = h.judged("cross_tenant_leak")
    assert (r.count, r.opportunities) == (1, 1)
    assert reason in r.witnesses[0].reason
    assert "mallory (not the owner alice)" in r.witnesses[0].reason


def test_empty_items_and_another_owners_scan_id_are_no_leak() -> None:
    h = Ops().scan().scan(tenant="bob", scan="b1", at=1000)
    # a refusal with an empty items list, echoing the asked id and a scan of someone else
    h.add(
        "results", "mallory", "s1", 150, http_status=404, body_status="not_found", items=0,
        body_scan_ids="b1,s1",
    )  # fmt: skip
    r = h.judged("cross_tenant_leak")
    assert (r.count, r.opportunities) == (0, 1)


# --- what the contract did not understand ---------------------------------------------


def test_understanding_doctest() -> None:
    assert doctest.testmod(understanding_module).failed == 0


def _polls(words: list[tuple[str, str]], kind: str = "status") -> Ops:
    h = Ops().add("discover", "alice", "s1", 0)
    for i, (raw, state) in enumerate(words):
        h.add(kind, "alice", "s1", 100 * (i + 1), raw_status=raw, body_status=state)
    return h


def test_unknown_words_above_the_share_are_a_reason_with_counts() -> None:
    h = _polls([("queued", "")] * 12 + [("paused", "")] * 3 + [("done", "complete")] * 25)
    found = understand(h.history(), Contract())
    assert dict(found.unknown_words) == {"queued": 12, "paused": 3}
    assert (found.answers, found.unknown_answers) == (40, 15)
    assert found.reasons == (
        "15 of 40 status and results answers carried words the contract does not list: "
        '"queued" (12), "paused" (3); add them under [words] (running, complete, failed, '
        "not_found or refused)",
    )


def test_unknown_words_below_the_share_are_a_warning_only() -> None:
    h = _polls([("queued", "")] * 2 + [("done", "complete")] * 100)
    found = understand(h.history())
    assert found.reasons == ()
    assert dict(found.unknown_words) == {"queued": 2}
    assert found.warnings[0].startswith("2 of 102 status and results answers carried words")


def test_few_answers_need_at_least_three_unknown_to_decide() -> None:
    # 2 of 4 is 50%, but 2 answers are too few to make the verdict unknown
    found = understand(_polls([("queued", "")] * 2 + [("done", "complete")] * 2).history())
    assert (found.reasons, len(found.warnings)) == ((), 1)


def test_a_status_path_that_matches_nothing_makes_the_verdict_unknown() -> None:
    jobs = contract_from_mapping({"status_field": "job.state"})
    found = understand(_polls([("", "")] * 10).history(), jobs)
    assert found.unmatched_status == 10
    assert found.reasons == (
        "10 of 10 status answers had no state at status_field 'job.state'; point "
        'status_field at the answers\' state word (a dotted path, e.g. "job.state")',
    )


def test_results_with_nothing_at_the_status_path_are_understood() -> None:
    found = understand(_polls([("", "complete")] * 10, kind="results").history())
    assert (found.answers, found.reasons, found.warnings) == (10, (), ())


def test_only_ok_2xx_answers_count() -> None:
    h = Ops().add("discover", "alice", "s1", 0)
    h.add("status", "alice", "s1", 100, http_status=404, raw_status="gone")
    h.add("status", "alice", "s1", 200, http_status=503, outcome="info")
    h.add("status", "alice", "s1", 300, http_status=200, raw_status="x", outcome="info")
    found = understand(h.history())
    assert (found.answers, found.unknown_words, found.reasons) == (0, {}, ())


def test_optional_paths_that_never_match_are_warnings() -> None:
    h = _polls([("scanning", "scanning"), ("complete", "complete")])
    found = understand(h.history(), Contract())
    assert found.reasons == ()
    assert [w.split(" matched")[0] for w in found.warnings] == [
        "progress_field 'progress'",
        "scan_id_field 'scan_id'",
    ]
    quiet = contract_from_mapping({"progress_field": "", "scan_id_field": ""})
    assert understand(h.history(), quiet).warnings == ()


def test_a_table_without_raw_status_shows_nothing_not_understood() -> None:
    ops = _polls([("queued", "")] * 5).history().ops.drop(columns=[S.RAW_STATUS])
    assert understand(History(ops=ops, faults=pd.DataFrame())).reasons == ()
