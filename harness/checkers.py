"""Checkers: pure functions from a history to per-class results with witnesses.

Each checker takes the :class:`Facts` derived once from the ops table (who owns
which scan, when it was accepted, when it was first seen finished) and returns a
:class:`~harness.verdict.ClassResult`. Only ``ok`` ops count: a ``fail`` op
certainly did not happen and an ``info`` op may or may not have.

>>> from harness.history import load_history  # doctest: +SKIP
>>> verdict = judge(load_history(run_dir), CheckConfig(retention_s=3.0, scan_deadline_s=4.0))
>>> verdict.verdict  # doctest: +SKIP
'fail'
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import schema as S
from harness.history import History
from harness.verdict import ClassResult, Verdict, Witness, decide

MAX_WITNESSES = 5
_NS = 1_000_000_000
# Derived per-op columns (never written to disk).
_OWNER = "_owner"
_ACCEPTED = "_accepted_ns"
_LIVE_END = "_live_end_ns"
_REASON = "_reason"
_SCAN = "_scan"  # the scan id as a small integer: grouping by it is several times faster


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """What a correct service promises, in seconds.

    ``retention_s``: how long after a scan is first seen finished its status and
    results must still answer. ``scan_deadline_s``: by when after acceptance a
    scan must be complete or failed. ``final_heal_ns``: when the last heal of
    the fault schedule began (scans accepted after it are not judged for
    ``stuck_scan``), ``None`` when there were no faults.
    """

    retention_s: float
    scan_deadline_s: float
    final_heal_ns: int | None = None

    def __post_init__(self) -> None:
        from harness.errors import UsageError

        if not self.retention_s > 0:
            raise UsageError(f"retention_s {self.retention_s!r}: must be > 0 seconds")
        if not self.scan_deadline_s > 0:
            raise UsageError(f"scan_deadline_s {self.scan_deadline_s!r}: must be > 0 seconds")


@dataclass(frozen=True)
class Facts:
    """Everything checkers share, computed once per history."""

    ops: pd.DataFrame  # ok ops about known scans, with _owner, _accepted_ns, _live_end_ns
    scans: pd.DataFrame  # one row per accepted scan: scan_id, owner, accepted, first_terminal
    unanswered: pd.DataFrame  # the owner's status polls that got no answer: _scan, t_invoke
    faults: pd.DataFrame
    config: CheckConfig
    end_ns: int  # the last time anything in the history happened


def derive_facts(history: History, config: CheckConfig) -> Facts:
    ops = history.ops
    disc = ops[(ops[S.KIND] == "discover") & (ops[S.OUTCOME] == "ok") & (ops[S.SCAN_ID] != "")]
    scans = pd.DataFrame(
        {
            S.SCAN_ID: disc[S.SCAN_ID].to_numpy(),
            _OWNER: disc[S.TENANT].to_numpy(),
            _ACCEPTED: disc[S.T_COMPLETE].to_numpy(),
        }
    ).drop_duplicates(S.SCAN_ID)
    scans[_SCAN] = np.arange(len(scans), dtype=np.int64)
    about = ops[(ops[S.KIND] != "discover") & (ops[S.OUTCOME] == "ok")]
    about = about.merge(scans, on=S.SCAN_ID, how="inner")
    is_owner = about[S.TENANT] == about[_OWNER]
    terminal = is_owner & (
        ((about[S.KIND] == "status") & about[S.BODY_STATUS].isin(("complete", "failed")))
        | ((about[S.KIND] == "results") & (about[S.HTTP_STATUS] == 200))
    )
    first_terminal = about.loc[terminal].groupby(_SCAN)[S.T_INVOKE].min()
    scans["_first_terminal_ns"] = scans[_SCAN].map(first_terminal).fillna(-1).astype("int64")
    retention = int(config.retention_s * _NS)
    deadline = int(config.scan_deadline_s * _NS)
    done = scans["_first_terminal_ns"] >= 0
    scans[_LIVE_END] = np.where(
        done, scans["_first_terminal_ns"] + retention, scans[_ACCEPTED] + deadline
    )
    about = about.merge(scans[[_SCAN, _LIVE_END, "_first_terminal_ns"]], on=_SCAN)
    times = [ops[S.T_INVOKE].max(), ops[S.T_COMPLETE].max()]
    if len(history.faults):
        times.append(history.faults[S.T_END].max())
    end_ns = int(max(t for t in times if pd.notna(t)) if len(ops) else 0)
    lost = ops[(ops[S.KIND] == "status") & (ops[S.OUTCOME] != "ok")]
    lost = lost.merge(scans[[S.SCAN_ID, _OWNER, _SCAN]], on=S.SCAN_ID, how="inner")
    unanswered = lost.loc[lost[S.TENANT] == lost[_OWNER], [_SCAN, S.T_INVOKE]]
    return Facts(
        ops=about,
        scans=scans,
        unanswered=unanswered,
        faults=history.faults,
        config=config,
        end_ns=end_ns,
    )


def _witness_rows(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sort_values(S.T_INVOKE, kind="stable")


def _excuse_mask(facts: Facts, rows: pd.DataFrame) -> tuple[pd.Series, dict[str, int]]:
    """Anomalies on scans whose own data a destructive fault destroyed earlier."""
    excused = pd.Series(False, index=rows.index)
    by: dict[str, int] = {}
    destructive = facts.faults[facts.faults[S.DESTRUCTIVE] & facts.faults[S.LANDED]]
    for fault in destructive.itertuples(index=False):
        start, end = getattr(fault, S.T_START), getattr(fault, S.T_END)
        hit = (rows[S.T_INVOKE] > start) & (rows[_ACCEPTED] < max(start, end))
        if getattr(fault, S.SCOPE) != "all":
            scans = set(filter(None, str(getattr(fault, S.AFFECTED_SCANS)).split(",")))
            tenants = set(filter(None, str(getattr(fault, S.AFFECTED_TENANTS)).split(",")))
            hit &= rows[S.SCAN_ID].isin(scans) | rows[_OWNER].isin(tenants)
        new = hit & ~excused
        if new.any():
            name = str(getattr(fault, S.FAULT))
            by[name] = by.get(name, 0) + int(new.sum())
            excused |= hit
    return excused, by


def _fault_windows(
    facts: Facts, rows: pd.DataFrame
) -> tuple[dict[str, int], list[tuple[str, ...]]]:
    """Count anomalies per fault window; return the active fault ids of each row."""
    counts: dict[str, int] = {}
    active: list[list[str]] = [[] for _ in range(len(rows))]
    t = rows[S.T_INVOKE].to_numpy()
    for fault in facts.faults.itertuples(index=False):
        start, end = getattr(fault, S.T_START), getattr(fault, S.T_END)
        inside = (t >= start) & (t <= max(start, end))
        n = int(inside.sum())
        if n:
            fid = str(getattr(fault, S.FAULT_ID))
            counts[fid] = n
            for i in np.flatnonzero(inside)[:MAX_WITNESSES]:
                active[i].append(fid)
    return counts, [tuple(a) for a in active]


# Lost data explains a scan that reads missing, stale or stuck; it never explains
# another scan's or another tenant's data in an answer.
_NEVER_EXCUSED = frozenset({"wrong_scan", "cross_tenant_leak"})


def _result(name: str, facts: Facts, anomalies: pd.DataFrame, opportunities: int) -> ClassResult:
    anomalies = _witness_rows(anomalies)
    excused_by: dict[str, int] = {}
    if name in _NEVER_EXCUSED:
        excused = pd.Series(False, index=anomalies.index)
    else:
        excused, excused_by = _excuse_mask(facts, anomalies)
    real = anomalies[~excused]
    windows, active = _fault_windows(facts, real)
    witnesses = tuple(
        Witness(
            op=str(r[S.OP]),
            scan_id=str(r[S.SCAN_ID]),
            tenant=str(r[S.TENANT]),
            kind=str(r[S.KIND]),
            worker=int(r[S.WORKER]),
            t_invoke_ns=int(r[S.T_INVOKE]),
            http_status=int(r[S.HTTP_STATUS]),
            body_status=str(r[S.BODY_STATUS]),
            reason=str(r[_REASON]),
            faults=active[i],
        )
        for i, (_, r) in enumerate(real.head(MAX_WITNESSES).iterrows())
    )
    return ClassResult(
        name=name,
        count=len(real),
        opportunities=opportunities,
        excused=int(excused.sum()),
        excused_by=excused_by,
        witnesses=witnesses,
        fault_windows=windows,
    )


def _owned(facts: Facts, kind: str) -> pd.DataFrame:
    ops = facts.ops
    return ops[(ops[S.KIND] == kind) & (ops[S.TENANT] == ops[_OWNER])]


def _live(ops: pd.DataFrame) -> pd.DataFrame:
    return ops[(ops[S.T_INVOKE] >= ops[_ACCEPTED]) & (ops[S.T_INVOKE] < ops[_LIVE_END])]


def check_status_not_found(facts: Facts) -> ClassResult:
    live = _live(_owned(facts, "status"))
    bad = live[live[S.BODY_STATUS] == "not_found"].assign(
        **{_REASON: "owner's status poll said not_found while the scan was live"}
    )
    return _result("status_not_found", facts, bad, len(live))


def check_results_404(facts: Facts) -> ClassResult:
    live = _live(_owned(facts, "results"))
    bad = live[live[S.HTTP_STATUS] == 404].assign(
        **{_REASON: "owner's results fetch answered 404 while the scan was live"}
    )
    return _result("results_404", facts, bad, len(live))


def check_zero_progress(facts: Facts) -> ClassResult:
    polls = _owned(facts, "status")
    polls = polls[polls[S.BODY_STATUS].isin(("scanning", "complete"))]
    missing = ~polls[S.HAS_PROGRESS]
    zero_total = polls[S.HAS_PROGRESS] & (polls[S.TOTAL] <= 0)
    short = (
        polls[S.HAS_PROGRESS]
        & (polls[S.BODY_STATUS] == "complete")
        & (polls[S.TOTAL] > 0)
        & (polls[S.COMPLETED] < polls[S.TOTAL])
    )
    any_bad = missing | zero_total | short
    reason = np.select(
        [missing[any_bad], zero_total[any_bad], short[any_bad]],
        [
            "no progress field (clients show 0/0)",
            "total_strategies is 0",
            "complete with fewer strategies completed than the total",
        ],
        "",
    )
    bad = polls[any_bad].assign(**{_REASON: reason})
    return _result("zero_progress", facts, bad, len(polls))


def check_progress_regression(facts: Facts) -> ClassResult:
    polls = _owned(facts, "status")
    polls = polls[polls[S.HAS_PROGRESS] & (polls[S.COMPLETED] >= 0)]
    # For each poll, the most progress any poll of the same scan showed before it began.
    before = polls[[_SCAN, S.T_COMPLETE, S.COMPLETED]].sort_values(S.T_COMPLETE)
    before = before.assign(_seen=before.groupby(_SCAN)[S.COMPLETED].cummax())
    after = polls.sort_values(S.T_INVOKE)
    joined = pd.merge_asof(
        after,
        before[[_SCAN, S.T_COMPLETE, "_seen"]].rename(columns={S.T_COMPLETE: "_prev_end"}),
        left_on=S.T_INVOKE,
        right_on="_prev_end",
        by=_SCAN,
        allow_exact_matches=False,
    )
    has_prev = joined["_seen"].notna()
    bad = joined[has_prev & (joined[S.COMPLETED] < joined["_seen"])]
    bad = bad.assign(
        **{
            _REASON: [
                f"reported {c} strategies completed after an earlier poll had seen {int(s)}"
                for c, s in zip(bad[S.COMPLETED], bad["_seen"], strict=True)
            ]
        }
    )
    return _result("progress_regression", facts, bad, int(has_prev.sum()))


def _after_first(polls: pd.DataFrame, done: pd.Series) -> pd.Series:
    """Which polls began after the first poll showing ``done`` had ended."""
    never = np.iinfo(np.int64).max
    done_end = polls[S.T_COMPLETE].where(done, never)
    first_done_end = done_end.groupby(polls[_SCAN]).transform("min")
    return polls[S.T_INVOKE] > first_done_end


def check_status_regression(facts: Facts) -> ClassResult:
    status = _owned(facts, "status")
    word = status[S.BODY_STATUS]
    after_complete = _after_first(status, word == "complete")
    after_failed = _after_first(status, word == "failed")
    # failed is terminal too: coming back from it (F12 over a sound design) is a regression
    left_failed = after_failed & word.isin(("scanning", "complete"))
    judged = after_complete | after_failed
    bad_status = status[(after_complete & (word == "scanning")) | left_failed]
    bad_status = bad_status.assign(
        **{
            _REASON: np.where(
                left_failed[bad_status.index],
                "status left failed for " + bad_status[S.BODY_STATUS] + " after a poll that "
                "had said failed",
                "status said scanning after a poll that had already said complete",
            )
        }
    )
    results = _owned(facts, "results")
    r_after = results[_after_first(results, results[S.HTTP_STATUS] == 200)].assign(
        **{_REASON: "results answered 202 (partial) after a fetch that had answered 200"}
    )
    bad = pd.concat([bad_status, r_after[r_after[S.HTTP_STATUS] == 202]])
    return _result("status_regression", facts, bad, int(judged.sum()) + len(r_after))


def check_wrong_scan(facts: Facts) -> ClassResult:
    ops = facts.ops
    owned = ops[(ops[S.TENANT] == ops[_OWNER]) & (ops[S.BODY_SCAN_IDS] != "")]
    bad = owned[owned[S.BODY_SCAN_IDS] != owned[S.SCAN_ID]]
    bad = bad.assign(
        **{_REASON: [f"the answer carried scan id(s) {ids}" for ids in bad[S.BODY_SCAN_IDS]]}
    )
    return _result("wrong_scan", facts, bad, len(owned))


def check_cross_tenant_leak(facts: Facts) -> ClassResult:
    ops = facts.ops
    probes = ops[ops[S.TENANT] != ops[_OWNER]]
    refused = probes[S.HTTP_STATUS].isin((403, 404)) | (
        (probes[S.KIND] == "status") & (probes[S.BODY_STATUS] == "not_found")
    )
    owners_data = np.array(
        [
            bool(owner) and owner in ids.split(",")
            for owner, ids in zip(probes[_OWNER], probes[S.BODY_USER_IDS], strict=True)
        ],
        dtype=bool,
    )
    leaked = ~refused | owners_data
    bad = probes[leaked]
    bad = bad.assign(
        **{
            _REASON: [
                f"{t} (not the owner {o}) got HTTP {h} {b!r}".rstrip()
                for t, o, h, b in zip(
                    bad[S.TENANT], bad[_OWNER], bad[S.HTTP_STATUS], bad[S.BODY_STATUS], strict=True
                )
            ]
        }
    )
    return _result("cross_tenant_leak", facts, bad, len(probes))


def _past_deadline(polls: pd.DataFrame, late: pd.DataFrame) -> pd.Series:
    """Which of ``polls`` asked about a ``late`` scan at or after its deadline and
    before its first terminal answer."""
    due = polls[_SCAN].map(late["_due"])
    first = polls[_SCAN].map(late["_first_terminal_ns"])
    return (polls[S.T_INVOKE] >= due) & ((first < 0) | (polls[S.T_INVOKE] < first))


def check_stuck_scan(facts: Facts) -> ClassResult:
    scans = facts.scans
    deadline = int(facts.config.scan_deadline_s * _NS)
    heal = facts.config.final_heal_ns
    due = scans[_ACCEPTED] + deadline
    first = scans["_first_terminal_ns"]
    on_time = (first >= 0) & (first <= due)
    # Decided: the deadline passed inside the history, or the scan was seen
    # finished by it (a run may end before the deadline of a scan that failed early).
    decided = (due <= facts.end_ns) | on_time
    # Undecided, too: after the deadline the owner asked and got no answer (503s,
    # timeouts: an outage) until the scan was seen finished, and no answer said it
    # was still running. Whether it finished in time is unknown, not a failure.
    late = scans.loc[~on_time, [_SCAN, "_first_terminal_ns"]].assign(_due=due[~on_time])
    late = late.set_index(_SCAN)
    lost = facts.unanswered
    asked = lost.loc[_past_deadline(lost, late), _SCAN]
    polls = _owned(facts, "status")
    past = _past_deadline(polls, late)
    answered = polls.loc[past, _SCAN]
    undecided = scans[_SCAN].isin(asked) & ~scans[_SCAN].isin(answered)
    eligible = scans[decided & ~undecided]
    if heal is not None:
        eligible = eligible[eligible[_ACCEPTED] < heal]
    stuck = eligible[~on_time[eligible.index]]
    # The witness of a stuck scan: the first answer past its deadline that still said
    # it was not finished; without one, its owner's last poll.
    mine = polls[_SCAN].isin(stuck[_SCAN])  # only the stuck scans need a witness
    evidence = polls[mine & past].sort_values(S.T_INVOKE).drop_duplicates(_SCAN, keep="first")
    rest = polls[mine & ~polls[_SCAN].isin(evidence[_SCAN])]
    last = rest.sort_values(S.T_INVOKE).drop_duplicates(_SCAN, keep="last")
    if len(evidence):
        last = pd.concat([evidence, last]) if len(last) else evidence
    keep = [c for c in last.columns if c not in (S.SCAN_ID, _OWNER, _ACCEPTED)]
    rows = stuck[[_SCAN, S.SCAN_ID, _OWNER, _ACCEPTED]].merge(last[keep], on=_SCAN, how="left")
    rows = rows.assign(**{_REASON: "neither complete nor failed by its deadline"})
    rows = rows.fillna(
        {S.OP: "", S.TENANT: "", S.KIND: "status", S.BODY_STATUS: "", S.T_INVOKE: 0}
    ).fillna({S.WORKER: -1, S.HTTP_STATUS: 0})
    return _result("stuck_scan", facts, rows, len(eligible))


CHECKERS: Mapping[str, Callable[[Facts], ClassResult]] = {
    "status_not_found": check_status_not_found,
    "results_404": check_results_404,
    "zero_progress": check_zero_progress,
    "progress_regression": check_progress_regression,
    "status_regression": check_status_regression,
    "wrong_scan": check_wrong_scan,
    "cross_tenant_leak": check_cross_tenant_leak,
    "stuck_scan": check_stuck_scan,
}


def judge(
    history: History,
    config: CheckConfig,
    *,
    thresholds: Mapping[str, int] | None = None,
    infrastructure_errors: tuple[str, ...] = (),
) -> Verdict:
    """Run every checker; a checker that crashes makes its class unknown, never pass."""
    limits = thresholds or {}
    try:
        facts = derive_facts(history, config)
    except Exception as exc:  # a broken history cannot be judged: unknown, with the reason
        crashed = [ClassResult.crashed(n, f"{type(exc).__name__}: {exc}") for n in CHECKERS]
        return decide(crashed, thresholds=limits, infrastructure_errors=infrastructure_errors)
    results = []
    for name, checker in CHECKERS.items():
        try:
            results.append(checker(facts))
        except Exception as exc:
            detail = traceback.format_exception_only(exc)[-1].strip()
            results.append(ClassResult.crashed(name, detail))
    return decide(results, thresholds=limits, infrastructure_errors=infrastructure_errors)
