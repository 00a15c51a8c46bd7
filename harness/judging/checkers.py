"""Checkers: pure functions from a history to per-class results with witnesses.

Each checker takes the :class:`Facts` derived once from the ops table (who owns
which scan, when it was accepted, when it was first seen finished) and returns a
:class:`~harness.judging.verdict.ClassResult`. Only ``ok`` ops count: a ``fail`` op
certainly did not happen and an ``info`` op may or may not have.

A stored run is judged with ``judge(load_history(run_dir), config)``. Here the
owner's status poll of a scan it was just given says ``not_found``:

>>> import pathlib, tempfile
>>> from harness.history.tables import Completion, HistoryWriter, load_history
>>> with tempfile.TemporaryDirectory() as tmp:
...     with HistoryWriter(pathlib.Path(tmp), proc="driver-0") as w:
...         op = w.invoke(kind="discover", tenant="alice")
...         w.complete(op, Completion(outcome="ok", http_status=202, scan_id="scan_1"))
...         op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
...         w.complete(op, Completion(outcome="ok", http_status=404, body_status="not_found"))
...     history = load_history(pathlib.Path(tmp))
>>> verdict = judge(history, CheckConfig(retention_s=3.0, scan_deadline_s=4.0))
>>> verdict.verdict, verdict.classes["status_not_found"].count
('fail', 1)

A history in which no discover yielded a scan id tested nothing: the verdict is
``unknown`` and says why (:func:`untested_reasons`), never ``pass``.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from harness.history import schema as S
from harness.history.outcomes import NOT_JSON
from harness.history.tables import History
from harness.judging.thresholds import Limit
from harness.judging.verdict import ClassResult, Verdict, Witness, decide
from harness.targets.contract import Contract

MAX_WITNESSES = 5
MAX_ANOMALY_OPS = 5000  # op ids kept per class in verdict.json (for the report's timeline)
_NS = 1_000_000_000
# Derived per-op columns (never written to disk).
_OWNER = "_owner"
_ACCEPTED = "_accepted_ns"
_LIVE_END = "_live_end_ns"
_REASON = "_reason"
_SCAN = "_scan"  # the scan id as a small integer: grouping by it is several times faster
_MINE = "_mine"  # the answer carries the scan's own id, or no scan id at all
_BY_OWNER = "_by_owner"  # the scan's owner asked (tenant == _owner), computed once


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """What a correct service promises, in seconds.

    ``retention_s``: how long after a scan finished its status and results must
    still answer, counted from the last proof it was unfinished (its owner's last
    ``scanning`` answer about it before the first terminal one, else the discover
    request). ``scan_deadline_s``: by when after acceptance a scan must be complete
    or failed; only an answer asked at or after it that still says ``scanning``
    makes a scan stuck.
    ``final_heal_ns``: when the last heal of the fault schedule began (scans
    accepted after it are not judged for ``stuck_scan``), ``None`` when there were
    no faults.
    ``progress``: the contract names a progress field; without one the progress
    classes are not applicable.
    ``lost_state_excused``: the contract's choice: wrong answers about a scan whose
    own keys a destructive fault removed are excused (True) or count (False).
    The service's shape, from the contract (:meth:`for_contract`); each decides which
    classes are *not applicable* (:func:`not_applicable`): ``results`` (it has a
    results endpoint), ``scan_ids`` (its answers carry a scan id), ``scan_id_echo``
    (the status answer's id only echoes the URL), ``tenancy`` (``"none"``: no
    tenants; probes ask about never-issued ids) and ``unknown_id_state`` (the right
    state of an answer about a never-issued id).
    """

    retention_s: float
    scan_deadline_s: float
    final_heal_ns: int | None = None
    progress: bool = True
    lost_state_excused: bool = True
    results: bool = True
    scan_ids: bool = True
    scan_id_echo: bool = False
    tenancy: str = "header"
    unknown_id_state: str = "not_found"

    @classmethod
    def for_contract(
        cls,
        contract: Contract,
        *,
        retention_s: float,
        scan_deadline_s: float,
        final_heal_ns: int | None = None,
    ) -> CheckConfig:
        """The promises of ``contract``'s service with these live windows.

        >>> from harness.targets.contract import contract_from_mapping
        >>> jobs = contract_from_mapping({"results_path": "", "tenancy": "none"})
        >>> c = CheckConfig.for_contract(jobs, retention_s=30.0, scan_deadline_s=10.0)
        >>> c.results, c.tenancy
        (False, 'none')
        """
        return cls(
            retention_s=retention_s,
            scan_deadline_s=scan_deadline_s,
            final_heal_ns=final_heal_ns,
            progress=bool(contract.progress_field),
            lost_state_excused=contract.lost_state_excused,
            results=contract.has_results,
            scan_ids=bool(contract.scan_id_field),
            scan_id_echo=contract.scan_id_echo,
            tenancy=contract.tenancy,
            unknown_id_state=contract.unknown_id_state,
        )

    def __post_init__(self) -> None:
        from harness.errors import UsageError

        if not self.retention_s > 0:
            raise UsageError(f"retention_s {self.retention_s!r}: must be > 0 seconds")
        if not self.scan_deadline_s > 0:
            raise UsageError(f"scan_deadline_s {self.scan_deadline_s!r}: must be > 0 seconds")


@dataclass(frozen=True)
class Facts:
    """Everything checkers share, computed once per history."""

    # ok ops about known scans (the columns checkers read: _FACT_COLUMNS), with
    # _accepted_ns, _scan, _by_owner, _mine, _live_end_ns, _first_terminal_ns
    ops: pd.DataFrame
    scans: pd.DataFrame  # one row per accepted scan: scan_id, owner, accepted, first_terminal
    faults: pd.DataFrame
    config: CheckConfig
    end_ns: int  # the last time anything in the history happened
    # 5xx answers (``info``) about known scans, with the columns of ``ops``
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)
    # ok status answers about never-issued ids (S.NEVER_ISSUED_PREFIX)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)


# The columns of an op that the checkers read: facts.ops carries only these (and the
# derived ones), so the judge's working copies of a large history stay small.
_FACT_COLUMNS: Final = (
    S.OP,
    S.KIND,
    S.TENANT,
    S.SCAN_ID,
    S.T_INVOKE,
    S.T_COMPLETE,
    S.WORKER,
    S.HTTP_STATUS,
    S.BODY_STATUS,
    S.COMPLETED,
    S.TOTAL,
    S.HAS_PROGRESS,
    S.ITEMS,
    S.BODY_SCAN_IDS,
    S.BODY_USER_IDS,
)


def _positions(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """The position of each of ``values`` in ``keys`` (unique), -1 where it is absent."""
    positions: np.ndarray
    try:  # Arrow's hash lookup: several times faster than pandas' for string columns
        found = pc.index_in(pa.array(values), value_set=pa.array(keys))
        positions = found.fill_null(-1).to_numpy().astype(np.int64)
    except (pa.ArrowException, TypeError, ValueError):  # e.g. a hand-built mixed column
        positions = np.asarray(pd.Index(keys).get_indexer(values), dtype=np.int64)
    return positions


def derive_facts(history: History, config: CheckConfig) -> Facts:
    ops = history.ops
    disc = ops[(ops[S.KIND] == "discover") & (ops[S.OUTCOME] == "ok") & (ops[S.SCAN_ID] != "")]
    scans = pd.DataFrame(
        {
            S.SCAN_ID: disc[S.SCAN_ID].to_numpy(),
            _OWNER: disc[S.TENANT].to_numpy(),
            _ACCEPTED: disc[S.T_COMPLETE].to_numpy(),
            "_asked_ns": disc[S.T_INVOKE].to_numpy(),
        }
    ).drop_duplicates(S.SCAN_ID)
    scans[_SCAN] = np.arange(len(scans), dtype=np.int64)
    # The ok answers about accepted scans, in history order, each with its scan's code
    # (one filtered copy of the needed columns; the scans' columns are looked up by code,
    # not merged, which would copy every row again).
    code = _positions(ops[S.SCAN_ID], scans[S.SCAN_ID])
    keep = ((ops[S.KIND] != "discover") & (ops[S.OUTCOME] == "ok")).to_numpy() & (code >= 0)
    about = ops.loc[keep, [c for c in _FACT_COLUMNS if c in ops.columns]].reset_index(drop=True)
    scan = code[keep]
    del code, keep
    # the owner is not kept per op (a string column every filter would copy): _by_owner
    # says whether the owner asked, facts.scans names the owner
    is_owner = about[_BY_OWNER] = about[S.TENANT] == scans[_OWNER].array.take(scan)
    about[_ACCEPTED] = scans[_ACCEPTED].to_numpy()[scan]
    about[_SCAN] = scan
    # An answer is about this scan when it carries the scan's own id or no id at all;
    # one carrying another scan's id is wrong_scan and proves nothing about this one.
    about[_MINE] = (about[S.BODY_SCAN_IDS] == "") | (about[S.BODY_SCAN_IDS] == about[S.SCAN_ID])
    # canonical states (status and results alike): see harness.history.schema
    terminal = is_owner & about[_MINE] & about[S.BODY_STATUS].isin(("complete", "failed"))
    first_terminal = about.loc[terminal].groupby(_SCAN)[S.T_INVOKE].min()
    scans["_first_terminal_ns"] = scans[_SCAN].map(first_terminal).fillna(-1).astype("int64")
    # The last proof the scan was unfinished: the invoke of the owner's last "scanning"
    # answer about it before the first terminal one (all of them when it was never seen
    # finished), else the discover's invoke. The scan finished after it, so a correct
    # service keeps it readable for retention from then at least. The first *sighting*
    # of complete can lag the completion by polls (more under load), and the deadline
    # may lie long after a fast scan finished: counting from either would blame a
    # correct expiry. A status poll and a results fetch (pending) both prove it.
    sighted = about[_SCAN].map(first_terminal)
    unfinished = (
        is_owner
        & about[_MINE]
        & (about[S.BODY_STATUS] == "scanning")
        & (sighted.isna() | (about[S.T_INVOKE] < sighted))
    )
    del sighted, is_owner, terminal
    last_unfinished = about.loc[unfinished].groupby(_SCAN)[S.T_INVOKE].max()
    proof = scans[_SCAN].map(last_unfinished).fillna(scans["_asked_ns"]).astype("int64")
    scans[_LIVE_END] = proof + int(config.retention_s * _NS)
    about[_LIVE_END] = scans[_LIVE_END].to_numpy()[scan]
    about["_first_terminal_ns"] = scans["_first_terminal_ns"].to_numpy()[scan]
    answered = ops[S.KIND] != "discover"
    errors = ops[answered & (ops[S.OUTCOME] == "info") & (ops[S.HTTP_STATUS] >= 500)]
    # scans carries _live_end_ns and _first_terminal_ns by now
    errors = errors.merge(scans, on=S.SCAN_ID, how="inner")
    never_issued = ops[S.SCAN_ID].astype(str).str.startswith(S.NEVER_ISSUED_PREFIX)
    probes = ops[(ops[S.KIND] == "status") & (ops[S.OUTCOME] == "ok") & never_issued]
    times = [ops[S.T_INVOKE].max(), ops[S.T_COMPLETE].max()]
    if len(history.faults):
        times.append(history.faults[S.T_END].max())
    end_ns = int(max(t for t in times if pd.notna(t)) if len(ops) else 0)
    return Facts(
        ops=about,
        scans=scans,
        faults=history.faults,
        config=config,
        end_ns=end_ns,
        errors=errors,
        probes=probes,
    )


def _witness_rows(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sort_values(S.T_INVOKE, kind="stable")


def _excuse_mask(facts: Facts, rows: pd.DataFrame) -> tuple[pd.Series, dict[str, int]]:
    """Anomalies on scans whose own data a destructive fault destroyed earlier.

    A fault of scope ``all`` (flush, restart, eviction) destroyed the data of every
    scan accepted before it ended. Any other destructive fault excuses only the
    scans it lists in ``affected_scans``: the accepted scans whose own keys it
    removed, named by the ``{scan_id}`` of the contract's key patterns. Tenants it
    lists are not excused: a tenant's key (its latest scan, a cache slot) names no
    scan, and excusing every scan of that tenant would hide the bugs of all of them.
    """
    excused = pd.Series(False, index=rows.index)
    by: dict[str, int] = {}
    if not facts.config.lost_state_excused:  # the contract promises to notice lost state
        return excused, by
    destructive = facts.faults[facts.faults[S.DESTRUCTIVE] & facts.faults[S.LANDED]]
    for fault in destructive.itertuples(index=False):
        start, end = getattr(fault, S.T_START), getattr(fault, S.T_END)
        # answered after the fault began (it may have been served after the loss), about
        # a scan accepted before it ended (its data existed to be lost)
        hit = (rows[S.T_COMPLETE] > start) & (rows[_ACCEPTED] < max(start, end))
        if getattr(fault, S.SCOPE) != "all":
            scans = set(filter(None, str(getattr(fault, S.AFFECTED_SCANS)).split(",")))
            hit &= rows[S.SCAN_ID].isin(scans)
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
# A finished scan whose state cannot be read is never explained by lost data either: a
# service that lost it answers not_found or pending, not an error.
_NEVER_EXCUSED = frozenset({"wrong_scan", "cross_tenant_leak", "terminal_unreadable"})
_UNFINISHED = ("scanning", "pending")  # pending: running *or unknown*
_TERMINAL = ("complete", "failed")


# Classes whose witness names every fault of the scan's life, not only those in effect
# when the proving op ran.
_WHOLE_LIFE = frozenset({"stuck_scan"})


def _faults_between(facts: Facts, begin_ns: int, end_ns: int) -> tuple[str, ...]:
    """The landed faults whose window overlaps ``[begin_ns, end_ns]``, in time order."""
    found = []
    for fault in facts.faults.itertuples(index=False):
        start, end = getattr(fault, S.T_START), getattr(fault, S.T_END)
        hurt = getattr(fault, S.LANDED) and getattr(fault, S.FAULT) != "heal"
        if hurt and start <= end_ns and max(start, end) >= begin_ns:
            found.append(str(getattr(fault, S.FAULT_ID)))
    return tuple(found)


def _result(name: str, facts: Facts, anomalies: pd.DataFrame, opportunities: int) -> ClassResult:
    anomalies = _witness_rows(anomalies)
    excused_by: dict[str, int] = {}
    if name in _NEVER_EXCUSED:
        excused = pd.Series(False, index=anomalies.index)
    else:
        excused, excused_by = _excuse_mask(facts, anomalies)
    real = anomalies[~excused]
    windows, active = _fault_windows(facts, real)
    if name in _WHOLE_LIFE and _ACCEPTED in real.columns:
        # a scan stuck at its deadline was hurt by whatever landed while it ran (a job
        # worker killed mid-task long before the poll that proves it): name those
        active = [
            _faults_between(facts, int(r[_ACCEPTED]), int(r[S.T_INVOKE]))
            for _, r in real.head(MAX_WITNESSES).iterrows()
        ]
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
        anomaly_ops=tuple(real[S.OP].astype(str).head(MAX_ANOMALY_OPS)),
        fault_windows=windows,
    )


def _owned_mask(facts: Facts, kind: str) -> pd.Series:
    """Which of ``facts.ops`` are the owner's ``kind`` answers about their scan: carrying
    its own id or none.

    An answer that carries another scan's id is judged by ``wrong_scan`` alone: its
    state, progress or absence says nothing about the scan that was asked about.
    """
    ops = facts.ops
    return (ops[S.KIND] == kind) & ops[_BY_OWNER] & ops[_MINE]


def _owned(facts: Facts, kind: str) -> pd.DataFrame:
    """The owner's ``kind`` answers about their scan (:func:`_owned_mask`)."""
    return facts.ops[_owned_mask(facts, kind)]


def _live_mask(facts: Facts, kind: str) -> pd.Series:
    """The owner's ``kind`` answers that were certainly given while the scan was promised
    readable: asked after the scan was accepted and answered before its live window
    ended (a request still in flight at the end may be served after a correct expiry).
    A mask, not a copy: only the anomalies among them are copied."""
    ops = facts.ops
    return (
        _owned_mask(facts, kind)
        & (ops[S.T_INVOKE] >= ops[_ACCEPTED])
        & (ops[S.T_COMPLETE] < ops[_LIVE_END])
    )


def check_status_not_found(facts: Facts) -> ClassResult:
    live = _live_mask(facts, "status")
    bad = facts.ops[live & (facts.ops[S.BODY_STATUS] == "not_found")].assign(
        **{_REASON: "owner's status poll said not_found while the scan was live"}
    )
    return _result("status_not_found", facts, bad, int(live.sum()))


def check_results_404(facts: Facts) -> ClassResult:
    """The owner's results fetch said ``not_found`` (by code, e.g. 404, or by word)
    while the scan was live."""
    live = _live_mask(facts, "results")
    bad = facts.ops[live & (facts.ops[S.BODY_STATUS] == "not_found")]
    bad = bad.assign(
        **{
            _REASON: [
                f"owner's results fetch answered not_found (HTTP {h}) while the scan was live"
                for h in bad[S.HTTP_STATUS]
            ]
        }
    )
    return _result("results_404", facts, bad, int(live.sum()))


PROGRESS_CLASSES: Final = ("zero_progress", "progress_regression")


def check_zero_progress(facts: Facts) -> ClassResult:
    if not facts.config.progress:  # the API has no progress: nothing to judge
        return _result("zero_progress", facts, facts.ops.iloc[:0], 0)
    ops = facts.ops
    polls = _owned_mask(facts, "status") & ops[S.BODY_STATUS].isin(("scanning", "complete"))
    has = ops[S.HAS_PROGRESS]
    missing = polls & ~has
    zero_total = polls & has & (ops[S.TOTAL] <= 0)
    short = (
        polls
        & has
        & (ops[S.BODY_STATUS] == "complete")
        & (ops[S.TOTAL] > 0)
        & (ops[S.COMPLETED] < ops[S.TOTAL])
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
    bad = ops[any_bad].assign(**{_REASON: reason})
    return _result("zero_progress", facts, bad, int(polls.sum()))


def check_progress_regression(facts: Facts) -> ClassResult:
    if not facts.config.progress:
        return _result("progress_regression", facts, facts.ops.iloc[:0], 0)
    ops = facts.ops
    # the few columns the join needs, of the polls that showed progress; the polls
    # themselves are copied only for the anomalies
    where = np.flatnonzero(
        _owned_mask(facts, "status") & ops[S.HAS_PROGRESS] & (ops[S.COMPLETED] >= 0)
    )
    polls = ops.iloc[where, ops.columns.get_indexer([_SCAN, S.T_INVOKE, S.T_COMPLETE, S.COMPLETED])]
    # For each poll, the most progress any poll of the same scan showed before it began.
    before = polls[[_SCAN, S.T_COMPLETE, S.COMPLETED]].sort_values(S.T_COMPLETE)
    before = before.assign(_seen=before.groupby(_SCAN)[S.COMPLETED].cummax())
    after = polls[[_SCAN, S.T_INVOKE]].assign(_row=np.arange(len(polls)))
    joined = pd.merge_asof(
        after.sort_values(S.T_INVOKE),
        before[[_SCAN, S.T_COMPLETE, "_seen"]].rename(columns={S.T_COMPLETE: "_prev_end"}),
        left_on=S.T_INVOKE,
        right_on="_prev_end",
        by=_SCAN,
        allow_exact_matches=False,
    )
    has_prev = joined["_seen"].notna()
    rows = joined["_row"].to_numpy()
    worse = has_prev.to_numpy() & (polls[S.COMPLETED].to_numpy()[rows] < joined["_seen"].to_numpy())
    bad = ops.iloc[where[rows[worse]]].assign(_seen=joined["_seen"].to_numpy()[worse])
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
    ops = facts.ops
    status = ops.loc[_owned_mask(facts, "status"), [S.BODY_STATUS, S.T_INVOKE, S.T_COMPLETE, _SCAN]]
    word = status[S.BODY_STATUS]
    after_complete = _after_first(status, word == "complete")
    after_failed = _after_first(status, word == "failed")
    # failed is terminal too: coming back from it (F12 over a sound design) is a regression;
    # so is reading pending (running or unknown) again after either
    left_failed = after_failed & word.isin((*_UNFINISHED, "complete"))
    judged = after_complete | after_failed
    regressed = (after_complete & word.isin(_UNFINISHED)) | left_failed
    bad_status = ops.loc[status.index[regressed.to_numpy()]]
    bad_status = bad_status.assign(
        **{
            _REASON: np.where(
                left_failed[bad_status.index],
                "status left failed for " + bad_status[S.BODY_STATUS] + " after a poll that "
                "had said failed",
                "status said " + bad_status[S.BODY_STATUS] + " after a poll that had already "
                "said complete",
            )
        }
    )
    results = _owned(facts, "results")
    r_after = results[_after_first(results, results[S.BODY_STATUS] == "complete")]
    r_bad = r_after[r_after[S.BODY_STATUS].isin(_UNFINISHED)]
    r_bad = r_bad.assign(
        **{
            _REASON: [
                f"results said {w} (HTTP {h}) after a fetch that had said complete"
                for w, h in zip(r_bad[S.BODY_STATUS], r_bad[S.HTTP_STATUS], strict=True)
            ]
        }
    )
    bad = pd.concat([bad_status, r_bad])
    return _result("status_regression", facts, bad, int(judged.sum()) + len(r_after))


def check_wrong_scan(facts: Facts) -> ClassResult:
    """An answer about a scan that is not the one asked about: the owner's answer carried
    another scan's id (not the status answer's when ``scan_id_echo``: an echo of the URL
    proves nothing), or, without tenants, an answer about a never-issued id gave another
    state than the contract's ``unknown_id_state`` (a scan that does not exist)."""
    ops = facts.ops
    owned = ops[_BY_OWNER] & (ops[S.BODY_SCAN_IDS] != "")
    if facts.config.scan_id_echo:
        owned &= ops[S.KIND] != "status"
    bad = ops[owned & (ops[S.BODY_SCAN_IDS] != ops[S.SCAN_ID])]
    bad = bad.assign(
        **{_REASON: [f"the answer carried scan id(s) {ids}" for ids in bad[S.BODY_SCAN_IDS]]}
    )
    probes = facts.probes if facts.config.tenancy == "none" else facts.probes.iloc[:0]
    if len(probes):
        right = facts.config.unknown_id_state
        wrong = probes[probes[S.BODY_STATUS] != right]
        wrong = wrong.assign(
            **{
                _REASON: [
                    f"a never-issued id read as {st or 'no state'} (HTTP {h}, {raw!r}); "
                    f"the right answer is {right} (unknown_id_state)"
                    for st, h, raw in zip(
                        wrong[S.BODY_STATUS], wrong[S.HTTP_STATUS], wrong[S.RAW_STATUS], strict=True
                    )
                ]
            }
        )
        bad = pd.concat([bad, wrong]) if len(bad) else wrong
    return _result("wrong_scan", facts, bad, int(owned.sum()) + len(probes))


_REFUSALS = ("refused", "not_found")


def _leak_reason(row: tuple[Any, ...], owner_of: Mapping[str, str]) -> str:
    """Why a non-owner's answer leaked the owner's scan ("" when it did not).

    A leak is a 2xx that is not a refusal, or any answer that carries the owner's
    data: their user id, one of their other scans' ids, or items. The id of the
    scan asked about is no data: the asker sent it, and a refusal may echo it.
    """
    tenant, owner, asked, code, word, user_ids, scan_ids, items = row
    said = f"{tenant} (not the owner {owner}) got HTTP {code} {word!r}"
    carried = []
    if owner and owner in str(user_ids).split(","):
        carried.append(f"{owner}'s user id")
    ids = str(scan_ids).split(",")
    others = sorted(s for s in ids if s and s != asked and owner_of.get(s) == owner)
    if others:
        carried.append(f"{owner}'s scan {', '.join(others)}")
    if pd.notna(items) and int(items) > 0:
        carried.append(f"{int(items)} items")
    if carried:
        return f"{said} carrying {' and '.join(carried)}"
    if 200 <= int(code) < 300 and word not in _REFUSALS:
        return said
    return ""


def check_cross_tenant_leak(facts: Facts) -> ClassResult:
    """A non-owner asked about a scan and was not refused, or got the owner's data.

    Opportunities: the non-owners' answers that were a refusal (``refused`` or
    ``not_found``, from the contract's words and codes) or a leak. Any other 4xx to a
    non-owner (a 400, a 429) with no data in it is neither: recorded, not counted.
    """
    ops = facts.ops
    probes = ops[~ops[_BY_OWNER]]
    owners = facts.scans[_OWNER].to_numpy()  # by scan code
    owner_of = dict(zip(facts.scans[S.SCAN_ID].tolist(), owners.tolist(), strict=True))
    columns = (S.SCAN_ID, S.HTTP_STATUS, S.BODY_STATUS, S.BODY_USER_IDS, S.BODY_SCAN_IDS)
    # a table built by hand before format 2 may lack items: then no answer carried any
    items = probes[S.ITEMS] if S.ITEMS in probes.columns else pd.Series(-1, index=probes.index)
    # lists: iterating an Arrow-backed column yields its values one by one, far slower
    rows = zip(
        probes[S.TENANT].tolist(),
        owners[probes[_SCAN].to_numpy()].tolist(),
        *(probes[c].tolist() for c in columns),
        items.tolist(),
        strict=True,
    )
    reasons = pd.Series(
        [_leak_reason(row, owner_of) for row in rows], index=probes.index, dtype=object
    )
    leaked = reasons != ""
    refused = probes[S.BODY_STATUS].isin(_REFUSALS) & ~leaked
    bad = probes[leaked].assign(**{_REASON: reasons[leaked]})
    return _result("cross_tenant_leak", facts, bad, int(leaked.sum() + refused.sum()))


def check_stuck_scan(facts: Facts) -> ClassResult:
    """A scan is stuck only on proof: an answer about it, asked at or after its deadline
    and before it was seen finished, still said ``scanning`` or ``pending`` (running or
    unknown: a lost job reads pending for ever).

    A scan seen finished by its deadline is an opportunity that passed. A scan
    nobody asked about after its deadline (sparse polls, an outage, the run ended)
    or first seen finished only later with no answer in between is undecided:
    neither an opportunity nor an anomaly. Scans accepted after the last heal
    began are not judged (the faults may still be in the way).
    """
    scans = facts.scans
    due = scans[_ACCEPTED] + int(facts.config.scan_deadline_s * _NS)
    first = scans["_first_terminal_ns"]
    on_time = (first >= 0) & (first <= due)
    ops = facts.ops
    asked = ops[S.T_INVOKE]
    scan_due = ops[_ACCEPTED] + int(facts.config.scan_deadline_s * _NS)  # its scan's due
    scan_first = ops["_first_terminal_ns"]
    late = ops[
        ops[_BY_OWNER]
        & ops[_MINE]
        & ops[S.BODY_STATUS].isin(_UNFINISHED)
        & (asked >= scan_due)
        & ((scan_first < 0) | (asked < scan_first))
    ]
    proven = scans[_SCAN].isin(late[_SCAN])
    eligible = on_time | proven
    heal = facts.config.final_heal_ns
    if heal is not None:
        eligible &= scans[_ACCEPTED] < heal
    stuck = scans[eligible & proven]
    # The witness of a stuck scan: the first answer past its deadline that still said
    # it was unfinished.
    evidence = late[late[_SCAN].isin(stuck[_SCAN])]
    rows = evidence.sort_values(S.T_INVOKE, kind="stable").drop_duplicates(_SCAN, keep="first")
    rows = rows.assign(
        **{
            _REASON: np.where(
                rows[S.BODY_STATUS] == "pending",
                "still pending (running or unknown) when asked at or after its deadline",
                "still scanning when asked at or after its deadline",
            )
        }
    )
    return _result("stuck_scan", facts, rows, int(eligible.sum()))


# Faults that remove data and leave Redis and the workers reachable: a 5xx after one is
# the service failing on what it reads, which they do not excuse.
_DATA_FAULTS = frozenset({"delete_keys", "expire_keys", "flush", "drop_queued", "drop_inflight"})


def _untouched(facts: Facts, since: pd.Series, t: pd.Series) -> pd.Series:
    """Which spans ``[since, t]`` no outage overlaps (any fault but the data faults). An
    outage and its after-effects (a circuit breaker still open, connections being
    rebuilt) answer 5xx about every scan, finished or not: such an answer proves
    nothing about one scan."""
    hit = pd.Series(False, index=t.index)
    for fault in facts.faults.itertuples(index=False):
        if getattr(fault, S.FAULT) in _DATA_FAULTS or getattr(fault, S.FAULT) == "heal":
            continue  # the final heal ends outages; what came before it is counted there
        start, end = getattr(fault, S.T_START), getattr(fault, S.T_END)
        hit |= (since <= max(start, end)) & (t >= start)
    return ~hit


def check_terminal_unreadable(facts: Facts) -> ClassResult:
    """The service could not answer about a finished scan; never excused.

    Two proofs, from the owner's status and results requests that got an answer
    (``ok``, or a 5xx recorded ``info``); a 5xx counts only for a scan that no outage
    (any fault but one that only removes data) touched from its acceptance to that
    answer (an outage's after-effects answer 5xx too):

    - *read after finishing*: a 5xx asked after an answer had said ``complete`` or
      ``failed`` ended, and answered before the scan's live window (retention) ended,
      with no answer after it that read the scan (a passing 503 is an outage);
    - *never readable*: a scan never seen finished whose every answer asked at or after
      its deadline was a 5xx (a task whose failure the service cannot serialise).

    Opportunities: the scans with an answer in either span. One witness per scan.
    """
    cfg = facts.config
    cols = [S.OP, S.SCAN_ID, S.TENANT, S.KIND, S.WORKER, S.T_INVOKE, S.T_COMPLETE,
            S.HTTP_STATUS, S.BODY_STATUS, _SCAN, _ACCEPTED, _LIVE_END]  # fmt: skip
    ok = facts.ops.loc[facts.ops[_BY_OWNER] & facts.ops[_MINE], cols]
    err = facts.errors
    if len(err):
        err = err[err[S.TENANT] == err[_OWNER]]
    empty = facts.ops.iloc[:0].assign(**{_REASON: ""})
    if not len(ok) and not len(err):
        return _result("terminal_unreadable", facts, empty, 0)
    answers = pd.concat(
        [ok.assign(_5xx=False), err[cols].assign(_5xx=True) if len(err) else None],
        ignore_index=True,
    )
    done = ok[ok[S.BODY_STATUS].isin(_TERMINAL)].sort_values(S.T_COMPLETE, kind="stable")
    first = done.drop_duplicates(_SCAN).set_index(_SCAN)
    term_end = answers[_SCAN].map(first[S.T_COMPLETE])
    due = answers[_ACCEPTED] + int(cfg.scan_deadline_s * _NS)
    calm = answers["_5xx"] & _untouched(facts, answers[_ACCEPTED], answers[S.T_INVOKE])
    # read after finishing, and never again: no answer after it read the scan (a 503 in
    # a moment of overload, then the state again, is an outage, not an unreadable scan)
    last_read = answers[_SCAN].map(ok.groupby(_SCAN)[S.T_INVOKE].max())
    after = (
        term_end.notna()
        & (answers[S.T_INVOKE] > term_end)
        & (answers[S.T_COMPLETE] < answers[_LIVE_END])
    )
    unread = after & calm & (answers[S.T_INVOKE] > last_read)
    bad_after = answers[unread]
    bad_after = bad_after.assign(
        **{
            _REASON: [
                f"{k} answered HTTP {h} after an answer had said {w}, and no later answer read "
                "it: the finished scan could not be read"
                for k, h, w in zip(
                    bad_after[S.KIND],
                    bad_after[S.HTTP_STATUS],
                    bad_after[_SCAN].map(first[S.BODY_STATUS]),  # the word it had said
                    strict=True,
                )
            ]
        }
    )
    # never readable
    late = term_end.isna() & (answers[S.T_INVOKE] >= due)
    late_answers = answers[late]
    only_5xx = late_answers.groupby(_SCAN)["_5xx"].all()
    n_5xx = late_answers.groupby(_SCAN)["_5xx"].sum()
    never = late & answers[_SCAN].isin(only_5xx.index[only_5xx.to_numpy(dtype=bool)]) & calm
    bad_never = answers[never]
    bad_never = bad_never.assign(
        **{
            _REASON: [
                f"{k} answered HTTP {h}, as did every answer from its deadline on ({int(n)}), "
                "never complete or failed: its final state could not be read"
                for k, h, n in zip(
                    bad_never[S.KIND],
                    bad_never[S.HTTP_STATUS],
                    bad_never[_SCAN].map(n_5xx),
                    strict=True,
                )
            ]
        }
    )
    bad = pd.concat([bad_after, bad_never]).sort_values(S.T_INVOKE, kind="stable")
    bad = bad.drop_duplicates(_SCAN, keep="first")
    opportunities = answers.loc[after | late, _SCAN].nunique()
    return _result("terminal_unreadable", facts, bad, int(opportunities))


CHECKERS: Mapping[str, Callable[[Facts], ClassResult]] = {
    "status_not_found": check_status_not_found,
    "results_404": check_results_404,
    "zero_progress": check_zero_progress,
    "progress_regression": check_progress_regression,
    "status_regression": check_status_regression,
    "wrong_scan": check_wrong_scan,
    "cross_tenant_leak": check_cross_tenant_leak,
    "stuck_scan": check_stuck_scan,
    "terminal_unreadable": check_terminal_unreadable,
}


def not_applicable(config: CheckConfig) -> dict[str, str]:
    """The classes that mean nothing for the service ``config`` describes, with why.

    Such a class is neither judged nor expected: its verdict word is
    ``not_applicable``, never a pass and never unknown.

    >>> c = CheckConfig(retention_s=30.0, scan_deadline_s=10.0, progress=False,
    ...                 results=False, scan_id_echo=True, tenancy="none")
    >>> sorted(not_applicable(c))
    ['cross_tenant_leak', 'progress_regression', 'results_404', 'zero_progress']
    >>> echo = CheckConfig(retention_s=3.0, scan_deadline_s=3.0, results=False,
    ...                    scan_id_echo=True)
    >>> not_applicable(echo)["wrong_scan"].split(":")[0]
    'scan_id_echo = true'
    """
    out: dict[str, str] = {}
    if not config.progress:
        why = 'progress_field = "": the service reports no progress'
        out.update(dict.fromkeys(PROGRESS_CLASSES, why))
    if not config.results:
        out["results_404"] = (
            'results_path = "": the service has no results endpoint (the status answer '
            "carries the result)"
        )
    no_tenants = config.tenancy == "none"
    if no_tenants:
        out["cross_tenant_leak"] = (
            'tenancy = "none": the service has no tenants, so no answer can reach another one'
        )
    if not no_tenants:  # without tenants, never-issued ids are always judged
        if not config.scan_ids:
            out["wrong_scan"] = 'scan_id_field = "": the answers carry no scan id'
        elif config.scan_id_echo and not config.results:
            out["wrong_scan"] = (
                "scan_id_echo = true: the status answer's id echoes the URL and proves "
                'nothing, and results_path = "": there is no results answer to carry '
                "another scan's id"
            )
    return out


_SHOWN_ANSWERS = 3


def _answer(http_status: int, error: str) -> str:
    """One answer in words, for "answers: HTTP 500 x 12, ReadTimeout x 2"."""
    if http_status <= 0:
        return error.partition(":")[0].strip() or "no answer"
    if error.startswith(NOT_JSON):
        return f"HTTP {http_status} (not JSON)"
    if 200 <= http_status < 300:
        return f"HTTP {http_status} without a scan id"
    return f"HTTP {http_status}"


def _answers(ops: pd.DataFrame) -> str:
    counts = Counter(
        _answer(int(h), str(e)) for h, e in zip(ops[S.HTTP_STATUS], ops[S.ERROR], strict=True)
    )
    ranked = counts.most_common()
    said = [f"{label} x {n}" for label, n in ranked[:_SHOWN_ANSWERS]]
    rest = sum(n for _, n in ranked[_SHOWN_ANSWERS:])
    if rest:
        said.append(f"{rest} other")
    return ", ".join(said)


def untested_reasons(history: History, *, service: str = "") -> tuple[str, ...]:
    """Why ``history`` tested nothing, one line each; empty when it tested something.

    Nothing is tested when no op was recorded, when no discover yielded a scan id
    (every class is about an accepted scan), or when the app never answered at
    all (every op ``fail`` or ``info``). Each line summarises the answers seen,
    so the user sees why. ``service`` (the app or URL) is named when given.

    >>> import pandas as pd
    >>> ops = pd.DataFrame({S.KIND: ["discover"] * 3, S.OUTCOME: ["info"] * 3,
    ...                     S.SCAN_ID: [""] * 3, S.HTTP_STATUS: [500] * 3, S.ERROR: [""] * 3})
    >>> for line in untested_reasons(History(ops=ops, faults=pd.DataFrame())):
    ...     print(line)
    no scan was accepted: 0 of 3 discovers yielded a scan id (answers: HTTP 500 x 3)
    the app never answered: 0 of 3 requests got an answer that counts (3 info: 5xx or no reply)
    """
    ops = history.ops
    where = f" by {service}" if service else ""
    if not len(ops):
        return (f"no op was recorded: nothing was tested{where}",)
    reasons = []
    discovers = ops[ops[S.KIND] == "discover"]
    accepted = (discovers[S.OUTCOME] == "ok") & (discovers[S.SCAN_ID] != "")
    if not accepted.any():
        reasons.append(
            f"no scan was accepted{where}: 0 of {len(discovers)} discovers yielded a scan id"
            + (f" (answers: {_answers(discovers)})" if len(discovers) else "")
        )
    answered = ops[S.OUTCOME] == "ok"
    if not answered.any():
        outcomes = ops[S.OUTCOME].value_counts()
        parts = []
        if outcomes.get("fail", 0):
            parts.append(f"{int(outcomes['fail'])} fail: never reached a worker")
        if outcomes.get("info", 0):
            parts.append(f"{int(outcomes['info'])} info: 5xx or no reply")
        reasons.append(
            f"the app never answered: 0 of {len(ops)} requests got an answer that counts"
            f" ({'; '.join(parts)})"
        )
    return tuple(reasons)


def judge(
    history: History,
    config: CheckConfig,
    *,
    thresholds: Mapping[str, int | Limit] | None = None,
    infrastructure_errors: tuple[str, ...] = (),
    expected_classes: Collection[str] | None = None,
    incomplete: str = "",
    service: str = "",
    not_understood: tuple[str, ...] = (),
) -> Verdict:
    """Run every checker; a checker that crashes makes its class unknown, never pass.

    A history that tested nothing (:func:`untested_reasons`) is unknown, and so is
    one where a class of ``expected_classes`` (what the run's plan should exercise;
    ``None``: not known) got no opportunity; ``incomplete`` says why the history
    stops early (the run was killed); ``not_understood``: what the contract could
    not read in the answers (:mod:`harness.judging.understanding`). A failing class
    beats each of them.
    """
    limits = thresholds or {}
    moot = not_applicable(config)
    if expected_classes is not None:
        expected_classes = [c for c in expected_classes if c not in moot]
    inapplicable = [ClassResult.inapplicable(n, why) for n, why in moot.items()]
    try:
        facts = derive_facts(history, config)
    except Exception as exc:  # a broken history cannot be judged: unknown, with the reason
        crashed = [
            ClassResult.crashed(n, f"{type(exc).__name__}: {exc}")
            for n in CHECKERS
            if n not in moot
        ]
        crashed += inapplicable
        return decide(
            crashed,
            thresholds=limits,
            infrastructure_errors=infrastructure_errors,
            incomplete=incomplete,
        )
    results = list(inapplicable)
    for name, checker in CHECKERS.items():
        if name in moot:
            continue
        try:
            results.append(checker(facts))
        except Exception as exc:
            detail = traceback.format_exception_only(exc)[-1].strip()
            results.append(ClassResult.crashed(name, detail))
    return decide(
        results,
        thresholds=limits,
        untested=untested_reasons(history, service=service),
        infrastructure_errors=infrastructure_errors,
        expected=expected_classes,
        incomplete=incomplete,
        not_understood=not_understood,
    )
