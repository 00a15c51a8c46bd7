"""The judge is sound: a correct service is never blamed, and one wrong answer is.

Hypothesis draws histories of a *correct* service (in memory, no process): scans of
several tenants with random durations (each finished before its deadline), answers
served at a random instant between a request's invoke and its completion, random
poll density, latencies and answering workers, an outage in which requests fail,
expiry at least ``retention`` after the scan finished, a destructive fault that
loses one scan's data (and names it), and non-owners' probes that are refused.
Every class must judge such a history clean. Then one wrong answer is added to
such a history, and exactly the class it belongs to must count it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.history import schema as S
from harness.history.tables import Completion, History
from harness.judging.checkers import CheckConfig, judge

MS = 1_000_000
TENANTS = ("alice", "bob", "carol")
PROBER = "mallory"  # owns no scan; every probe of theirs must be refused
_SETTINGS = settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a failure here is never a flake
    suppress_health_check=[HealthCheck.too_slow],
)

# Defaults of every op column: the recorder's own for the answer's columns, so a column
# the schema gains later gets the value the recorder writes when it has nothing to say.
_DEFAULTS: dict[str, Any] = {
    **{f.name: f.default for f in dataclasses.fields(Completion)},
    S.PROC: "prop",
    S.FILTERS: "",
    S.PINNED_WORKER: -1,
    S.OUTCOME: "ok",
    S.WORKER: 0,
    S.HTTP_STATUS: 200,
}
_RESULTS_CODE = {"scanning": 202, "complete": 200, "not_found": 404, "refused": 403}


@dataclass(frozen=True)
class Scan:
    """The truth about one scan (times in ms)."""

    sid: str
    owner: str
    accepted: int  # the discover's completion
    created: int  # when the service created it (between the discover's invoke and answer)
    done: int  # when it finished: accepted + 10 ms .. its deadline - 10 ms
    expires: int | None  # at least retention after done; None: kept for the whole run
    fails: bool
    total: int

    def state(self, at: int) -> str:
        if self.expires is not None and at >= self.expires:
            return "not_found"
        if at < self.done:
            return "scanning"
        return "failed" if self.fails else "complete"

    def completed(self, at: int) -> int:
        """Strategies completed at ``at``: 1 .. total - 1 while scanning, rising with time."""
        if at >= self.done:
            return self.total if self.state(at) == "complete" else self.total - 1
        return 1 + (self.total - 1) * (at - self.created) // (self.done - self.created)


@dataclass
class World:
    retention_ms: int
    deadline_ms: int
    ids_in_body: bool
    users_in_body: bool
    scans: list[Scan]
    ops: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def op(self, kind: str, tenant: str, *, at: int, took: int, **cols: Any) -> None:
        row = dict(_DEFAULTS, **cols)
        row.update(
            {
                S.OP: f"prop:{next(self._seq)}",
                S.KIND: kind,
                S.TENANT: tenant,
                S.T_INVOKE: at * MS,
                S.T_COMPLETE: (at + took) * MS,
            }
        )
        self.ops.append(row)

    def answer(
        self,
        scan: Scan,
        kind: str,
        tenant: str,
        word: str,
        *,
        at: int,
        took: int,
        worker: int,
        served: int | None = None,
    ) -> None:
        """An ok answer saying ``word`` about ``scan``, shaped as a correct service shapes
        it, served at ``served`` (default: halfway through the request)."""
        cols: dict[str, Any] = {S.SCAN_ID: scan.sid, S.WORKER: worker, S.BODY_STATUS: word}
        if kind == "results":
            cols[S.HTTP_STATUS] = _RESULTS_CODE.get(word, 200)
        elif word in ("not_found", "refused"):
            cols[S.HTTP_STATUS] = 404 if word == "not_found" else 403
        if word not in ("not_found", "refused"):
            cols[S.BODY_SCAN_IDS] = scan.sid if self.ids_in_body else ""
            cols[S.BODY_USER_IDS] = scan.owner if self.users_in_body else ""
            if kind == "status":
                served = at + took // 2 if served is None else served
                cols.update(
                    {
                        S.HAS_PROGRESS: True,
                        S.COMPLETED: scan.completed(min(served, scan.done - 1))
                        if word == "scanning"
                        else scan.completed(max(served, scan.done)),
                        S.TOTAL: scan.total,
                    }
                )
        self.op(kind, tenant, at=at, took=took, **cols)

    def history(self) -> History:
        ops = pd.DataFrame(self.ops, columns=list(S.OP_COLUMNS))
        faults = pd.DataFrame(self.faults, columns=list(S.FAULT_COLUMNS))
        return History(ops=ops, faults=faults)

    def config(self) -> CheckConfig:
        return CheckConfig(
            retention_s=self.retention_ms / 1000, scan_deadline_s=self.deadline_ms / 1000
        )

    def fault(self, name: str, *, at: int, until: int, **cols: Any) -> None:
        row = {
            S.FAULT_ID: f"f{len(self.faults)}",
            S.FAULT: name,
            S.TARGET: "test",
            S.PARAMS: "{}",
            S.T_START: at * MS,
            S.T_END: until * MS,
            S.LANDED: True,
            S.EVIDENCE: "drawn",
            S.DESTRUCTIVE: False,
            S.SCOPE: "listed",
            S.AFFECTED_SCANS: "",
            S.AFFECTED_TENANTS: "",
        }
        row.update(cols)
        self.faults.append(row)


@st.composite
def correct_histories(draw: st.DrawFn, *, min_scans: int = 1, lose: bool = True) -> World:
    """A history a correct service could have produced (see the module docstring)."""
    retention = draw(st.integers(500, 3000))
    deadline = draw(st.integers(500, 4000))
    world = World(
        retention_ms=retention,
        deadline_ms=deadline,
        ids_in_body=draw(st.booleans()),
        users_in_body=draw(st.booleans()),
        scans=[],
    )
    outage = None
    if draw(st.booleans()):
        start = draw(st.integers(0, 6000))
        outage = (start, start + draw(st.integers(50, 2000)))
        world.fault("worker_kill", at=outage[0], until=outage[1])
    for _ in range(draw(st.integers(0, 2))):  # discovers that never reached the service
        world.op("discover", draw(st.sampled_from(TENANTS)), at=draw(st.integers(0, 3000)),
                 took=5, outcome="fail", http_status=0, error="ConnectError: refused")  # fmt: skip
    for i in range(draw(st.integers(min_scans, 5))):
        asked = draw(st.integers(0, 3000))
        accepted = asked + draw(st.integers(1, 150))
        created = draw(st.integers(asked, accepted))
        done = accepted + draw(st.integers(10, deadline - 10))
        kept = draw(st.one_of(st.none(), st.integers(retention, 2 * retention)))
        scan = Scan(
            sid=f"s{i}",
            owner=draw(st.sampled_from(TENANTS)),
            accepted=accepted,
            created=created,
            done=done,
            expires=None if kept is None else done + kept,
            fails=i > 0 and draw(st.integers(0, 4)) == 0,
            total=draw(st.integers(2, 20)),
        )
        world.scans.append(scan)
        world.op("discover", scan.owner, at=asked, took=accepted - asked, scan_id=scan.sid,
                 worker=draw(st.integers(0, 3)), http_status=202)  # fmt: skip
    if lose and draw(st.booleans()):  # a fault destroys one scan's data, and names that scan
        victim = draw(st.sampled_from(world.scans))
        at = victim.accepted + draw(st.integers(0, 3000))
        lost = dataclasses.replace(victim, expires=min(at, victim.expires or at))
        world.scans[world.scans.index(victim)] = lost
        world.fault("delete_keys", at=at, until=at + 5, destructive=True,
                    affected_scans=victim.sid)  # fmt: skip
    for scan in world.scans:
        horizon = scan.done - scan.accepted + 2 * retention + 500
        for _ in range(draw(st.integers(0, 12))):
            kind = (
                "status" if scan.fails else draw(st.sampled_from(("status", "status", "results")))
            )
            at = scan.accepted + draw(st.integers(0, horizon))
            took = draw(st.integers(1, 300))
            worker = draw(st.integers(0, 3))
            if outage is not None and outage[0] <= at <= outage[1]:
                outcome = draw(st.sampled_from(("info", "fail")))
                world.op(kind, scan.owner, at=at, took=took, scan_id=scan.sid, outcome=outcome,
                         http_status=503 if outcome == "info" else 0, worker=-1)  # fmt: skip
                continue
            served = at + draw(st.integers(0, took))
            world.answer(scan, kind, scan.owner, scan.state(served), at=at, took=took,
                         worker=worker, served=served)  # fmt: skip
        for _ in range(draw(st.integers(0, 2))):  # a non-owner's probe, refused
            kind = draw(st.sampled_from(("status", "results")))
            word = draw(st.sampled_from(("refused", "not_found")))
            at = scan.accepted + draw(st.integers(0, horizon))
            world.answer(scan, kind, PROBER, word, at=at, took=draw(st.integers(1, 300)),
                         worker=draw(st.integers(0, 3)))  # fmt: skip
    return world


def _counts(world: World) -> dict[str, int]:
    verdict = judge(world.history(), world.config())
    assert not [n for n, r in verdict.classes.items() if r.error], verdict.reasons
    return {n: r.count for n, r in verdict.classes.items() if r.count}


@settings(_SETTINGS, max_examples=60)
@given(correct_histories())
def test_a_correct_service_is_never_blamed(world: World) -> None:
    verdict = judge(world.history(), world.config())
    assert {n: r.count for n, r in verdict.classes.items() if r.count} == {}
    assert verdict.verdict == "pass", verdict.reasons


# ------------------------------------------------------------------ one wrong answer each
Mutation = Callable[[World, st.DrawFn], None]


def _not_found_while_live(world: World, draw: st.DrawFn) -> None:
    scan = draw(st.sampled_from(world.scans))
    world.answer(scan, "status", scan.owner, "not_found", at=scan.accepted + 1, took=1, worker=2)


def _results_not_found_while_live(world: World, draw: st.DrawFn) -> None:
    scan = draw(st.sampled_from(world.scans))
    world.answer(scan, "results", scan.owner, "not_found", at=scan.accepted + 1, took=1, worker=2)


def _foreign_scan_id(world: World, draw: st.DrawFn) -> None:
    asked, other = draw(st.permutations(world.scans))[:2]
    at = asked.accepted + draw(st.integers(1, 2000))
    word = draw(st.sampled_from(("scanning", "complete")))
    # the other scan's answer (its id, its owner, its progress) to the request about `asked`
    world.op("status", asked.owner, at=at, took=5, scan_id=asked.sid, body_status=word,
             body_scan_ids=other.sid, body_user_ids=other.owner, has_progress=True,
             completed=other.total if word == "complete" else 1, total=other.total)  # fmt: skip


def _progress_regression(world: World, draw: st.DrawFn) -> None:
    scan = draw(st.sampled_from(world.scans))
    # two polls in order, long before it finished: 1 strategy done, then 0
    for at, completed in ((scan.accepted + 1, 1), (scan.accepted + 3, 0)):
        world.op("status", scan.owner, at=at, took=1, scan_id=scan.sid, body_status="scanning",
                 body_scan_ids=scan.sid, has_progress=True, completed=completed,
                 total=scan.total)  # fmt: skip


def _status_regression(world: World, draw: st.DrawFn) -> None:
    scan = world.scans[0]  # never fails
    for at, word in ((scan.done + 1, "complete"), (scan.done + 3, "scanning")):
        world.op("status", scan.owner, at=at, took=1, scan_id=scan.sid, body_status=word,
                 body_scan_ids=scan.sid, has_progress=True, completed=scan.total,
                 total=scan.total)  # fmt: skip


def _leak(world: World, draw: st.DrawFn) -> None:
    scan = draw(st.sampled_from(world.scans))
    kind = draw(st.sampled_from(("status", "results")))
    world.op(kind, PROBER, at=scan.accepted + 1, took=2, scan_id=scan.sid,
             body_status="scanning", http_status=200, body_scan_ids=scan.sid,
             body_user_ids=scan.owner)  # fmt: skip


MUTATIONS: dict[str, tuple[str, Mutation]] = {
    "not_found_while_live": ("status_not_found", _not_found_while_live),
    "results_not_found_while_live": ("results_404", _results_not_found_while_live),
    "foreign_scan_id": ("wrong_scan", _foreign_scan_id),
    "progress_regression": ("progress_regression", _progress_regression),
    "status_regression": ("status_regression", _status_regression),
    "leak": ("cross_tenant_leak", _leak),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_one_wrong_answer_flips_exactly_its_class(mutation: str) -> None:
    expected, mutate = MUTATIONS[mutation]

    @settings(_SETTINGS, max_examples=10)
    @given(correct_histories(min_scans=2, lose=False), st.data())
    def flips(world: World, data: st.DataObject) -> None:
        mutate(world, data.draw)
        assert _counts(world) == {expected: 1}

    flips()
