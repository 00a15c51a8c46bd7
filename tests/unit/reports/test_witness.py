"""The witness in words: the sentence a reviewer reads instead of the ops table."""

from __future__ import annotations

from harness.history.tables import History
from harness.judging.checkers import CheckConfig, judge
from harness.judging.verdict import Witness
from reports.witness import Account, ScanIndex, describe_witness, scan_timeline
from tests.unit.history_catalogue import Hist, healthy_scan
from tests.unit.reports.run_catalogue import CFG, lost_scan_history


def _first_witness(history: History, name: str, cfg: CheckConfig = CFG) -> Account:
    result = judge(history, cfg).classes[name]
    assert result.witnesses, f"{name} has no witness"
    return describe_witness(result.witnesses[0], ScanIndex(history.ops), history.faults, t0_ns=0)


def test_lost_scan_poll_is_told_with_worker_answer_acceptance_previous_poll_and_fault() -> None:
    text = _first_witness(lost_scan_history().build(), "status_not_found").plain()
    assert text == (
        "Poll #3 of scan s1 by alice was served by worker 2 at 3.41 s and said not_found, "
        "0.80 s after the scan was accepted by worker 0; the previous poll (worker 1, 3.38 s) "
        "said scanning 0/14. Why it counts: owner's status poll said not_found while the scan "
        "was live. Fault in effect: worker_kill on worker:3 (f0)."
    )


def test_results_fetch_is_numbered_among_results_fetches() -> None:
    h = healthy_scan(Hist())
    h.results("alice", "s1", 202, at=150, worker=1)
    h.results("alice", "s1", 404, at=250, worker=2)
    text = _first_witness(h.build(), "results_404").plain()
    assert text.startswith("Results fetch #2 of scan s1 by alice was served by worker 2")
    assert "the previous results fetch (worker 1, 0.15 s) answered HTTP 202." in text
    assert text.endswith("No fault was injected in this run.")


def test_a_fault_that_already_ended_is_named_with_how_long_ago() -> None:
    h = healthy_scan(Hist())
    h.fault("redis_stall", at=120, until=140)
    h.status("alice", "s1", "not_found", at=190, worker=3)
    text = _first_witness(h.build(), "status_not_found").plain()
    assert (
        "No fault in effect; the last one, redis_stall on redis (f0), ended 0.05 s earlier." in text
    )


def test_cross_tenant_probe_names_the_owner_it_was_accepted_for() -> None:
    h = healthy_scan(Hist())
    h.status("mallory", "s1", "scanning", at=150, worker=1, progress=(3, 14), users="alice")
    text = _first_witness(h.build(), "cross_tenant_leak").plain()
    assert text.startswith(
        "Poll #1 of scan s1 by mallory was served by worker 1 at 0.15 s and said scanning 3/14, "
        "0.14 s after the scan was accepted for alice by worker 0; "
        "it was this tenant's first poll of that scan."
    )


def test_a_stuck_scan_is_told_from_the_answer_after_its_deadline() -> None:
    h = Hist()
    h.discover("alice", "s9", at=0, worker=1)
    h.status("alice", "s9", "scanning", at=500, worker=2)
    h.status("alice", "s9", "scanning", at=2500, worker=3)
    healthy_scan(h, tenant="bob", scan="s2", start=2600)
    text = _first_witness(h.build(), "stuck_scan", CheckConfig(retention_s=3, scan_deadline_s=2))
    assert text.plain().startswith("Poll #2 of scan s9 by alice was served by worker 3 at 2.5"), (
        text.plain()
    )
    assert "still scanning when asked at or after its deadline" in text.plain()


def test_an_unanswered_op_says_why_it_had_no_answer() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150, worker=2)
    h.status("alice", "s1", "", at=160, worker=-1, http_status=0, outcome="info",
             error="ReadTimeout: timed out")  # fmt: skip
    history = h.build()
    w = Witness(op="t:6", scan_id="s1", tenant="alice", kind="status", worker=-1,
                t_invoke_ns=160_000_000, http_status=0, body_status="", reason="x")  # fmt: skip
    text = describe_witness(w, ScanIndex(history.ops), history.faults, t0_ns=0).plain()
    assert "reached no worker at 0.16 s and said no answer (ReadTimeout: timed out)" in text
    timeline = scan_timeline(w, ScanIndex(history.ops), t0_ns=0)
    assert list(timeline["witness"]).count(True) == 1
    assert (
        timeline.loc[timeline["witness"], "answer"].item() == "no answer (ReadTimeout: timed out)"
    )


def test_values_are_quoted_per_format_and_our_words_are_not() -> None:
    account = Account((("Poll of ", "text"), ("<b>|`x`", "value"), (" said *bold*", "prose")))
    assert account.plain() == "Poll of <b>|`x` said *bold*"
    assert account.markdown() == "Poll of `` <b>|`x` `` said \\*bold\\*"
    assert account.html() == "Poll of <code>&lt;b&gt;|`x`</code> said *bold*"
