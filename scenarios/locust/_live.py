"""Live anomaly tally of a locust process: no locust, no gevent, no pandas.

The checkers judge the whole history once the test is over. While it runs, the
users can already see some anomalies in a single answer and what they saw of
the same scan before: a ``not_found`` for a scan they own and saw scanning, a
regression after ``complete``, another scan's id in an answer, another tenant's
data in a probe. :class:`LiveTally` names each such answer with its anomaly
class (the names of ``harness.history.schema.ANOMALY_CLASSES``), so that locust
marks it a failure under that name and counts it live.

The tally follows the checkers' rules (``harness/judging/checkers.py``) for one
answer at a time, with no excuses: a fault that destroyed a scan's data
excuses its anomalies in the verdict, not here. The verdict decides; these
counts are what was seen so far.

>>> t = LiveTally(retention_s=10.0, scan_deadline_s=60.0, progress=False)
>>> t.accepted("alice", "s1", asked=0.0, now=0.1)
>>> t.observe("status", "alice", "s1", Seen(body_status="scanning"), asked=1.0, now=1.1)
>>> t.observe("status", "alice", "s1", Seen(body_status="complete"), asked=2.0, now=2.1)
>>> t.observe("status", "alice", "s1", Seen(body_status="scanning"), asked=3.0, now=3.1)
'status_regression'
>>> t.observe("status", "alice", "s1", Seen(body_status="not_found"), asked=4.0, now=4.1)
'status_not_found'
>>> t.observe("results", "bob", "s1", Seen(http_status=200, body_status="complete"), asked=5, now=5)
'cross_tenant_leak'
>>> dict(t.anomalies)
{'status_regression': 1, 'status_not_found': 1, 'cross_tenant_leak': 1}
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from harness.history.schema import ANOMALY_CLASSES

TERMINAL = frozenset({"complete", "failed"})
# Unfinished words, as the checkers read them: "pending" is running *or unknown*.
_UNFINISHED = frozenset({"scanning", "pending"})
_REFUSALS = frozenset({"refused", "not_found"})
_MAX_SCANS = 20_000  # scans remembered per process; the oldest are forgotten first

# One fixed line per class: locust groups failures by their message.
MEANING: dict[str, str] = {
    "status_not_found": "owner's status poll said not_found while the scan was live",
    "results_404": "owner's results fetch said not_found while the scan was live",
    "zero_progress": "scanning/complete without usable progress",
    "progress_regression": "fewer strategies completed than an earlier poll showed",
    "status_regression": "scanning or pending again after complete, or left failed",
    "wrong_scan": "the answer carried another scan's id",
    "cross_tenant_leak": "another tenant was not refused, or got the owner's data",
    "stuck_scan": "still scanning at or after the scan deadline (counted once per scan)",
    "terminal_unreadable": "a finished scan's status could not be read (5xx; judged at the end)",
}
assert tuple(MEANING) == ANOMALY_CLASSES


@dataclass(frozen=True, slots=True)
class Seen:
    """What one answer said (the fields of a history completion the tally reads)."""

    http_status: int = 200
    body_status: str = ""
    completed: int = -1
    total: int = -1
    has_progress: bool = True
    items: int = -1
    body_scan_ids: str = ""
    body_user_ids: str = ""

    @classmethod
    def of(cls, done: Any) -> Seen:
        """From a :class:`harness.history.writer.Completion` (or anything with its fields)."""
        return cls(
            http_status=done.http_status,
            body_status=done.body_status,
            completed=done.completed,
            total=done.total,
            has_progress=done.has_progress,
            items=done.items,
            body_scan_ids=done.body_scan_ids,
            body_user_ids=done.body_user_ids,
        )


@dataclass(slots=True)
class _Scan:
    owner: str
    accepted: float  # when the discover answered
    proof: float  # the last time it was certainly unfinished (an invoke)
    terminal_seen: bool = False
    status_complete: bool = False
    status_failed: bool = False
    results_complete: bool = False
    max_completed: int = -1
    stuck: bool = False


@dataclass(slots=True)
class LiveTally:
    """Anomaly counts of the answers seen so far; see the module docstring.

    Times are the caller's clock (``time.monotonic()``) in seconds.
    """

    retention_s: float
    scan_deadline_s: float
    progress: bool = True  # the API reports progress (else no progress classes)
    ops: int = 0  # answers and errors observed
    errors: int = 0  # answers that were no answer: fail / info outcomes
    anomalies: Counter[str] = field(default_factory=Counter)
    _scans: OrderedDict[str, _Scan] = field(default_factory=OrderedDict)

    def accepted(self, tenant: str, scan_id: str, *, asked: float, now: float) -> None:
        """``tenant`` started ``scan_id``: asked at ``asked``, answered at ``now``."""
        self._scans[scan_id] = _Scan(owner=tenant, accepted=now, proof=asked)
        while len(self._scans) > _MAX_SCANS:
            self._scans.popitem(last=False)

    def error(self) -> None:
        """A request that got no answer (counted, never judged)."""
        self.ops += 1
        self.errors += 1

    def observe(
        self, kind: str, tenant: str, scan_id: str, seen: Seen, *, asked: float, now: float
    ) -> str | None:
        """Count one answer about ``scan_id`` in every class it shows (as the checkers
        do); the first of them names the answer's locust failure; None when none."""
        self.ops += 1
        found = self._judge(kind, tenant, scan_id, seen, asked=asked, now=now)
        self.anomalies.update(found)
        return found[0] if found else None

    def snapshot(self) -> dict[str, Any]:
        """The counts as JSON (class order as in the verdict; zero classes left out)."""
        return {
            "ops": self.ops,
            "errors": self.errors,
            "anomalies": {c: self.anomalies[c] for c in ANOMALY_CLASSES if self.anomalies[c]},
        }

    def _judge(
        self, kind: str, tenant: str, scan_id: str, seen: Seen, *, asked: float, now: float
    ) -> list[str]:
        scan = self._scans.get(scan_id)
        if scan is None or kind not in ("status", "results"):
            return []  # a scan this process did not start: nothing to compare with
        if tenant != scan.owner:
            return ["cross_tenant_leak"] if self._leaks(scan, scan_id, seen) else []
        if seen.body_scan_ids not in ("", scan_id):
            return ["wrong_scan"]  # says nothing about this scan: judged by wrong_scan alone
        word = seen.body_status
        live = now < scan.proof + self.retention_s
        found = (
            self._status(scan, seen, asked=asked, live=live)
            if kind == "status"
            else self._results(scan, word, live=live)
        )
        late = asked >= scan.accepted + self.scan_deadline_s
        if word == "scanning" and late and not scan.terminal_seen and not scan.stuck:
            scan.stuck = True  # one per scan, like the checker
            found.append("stuck_scan")
        if word == "scanning" and not scan.terminal_seen:
            scan.proof = asked
        if word in TERMINAL:
            scan.terminal_seen = True
        return found

    def _status(self, scan: _Scan, seen: Seen, *, asked: float, live: bool) -> list[str]:
        word = seen.body_status
        found = []
        if word == "not_found" and live:
            found.append("status_not_found")
        if (word in _UNFINISHED and scan.status_complete) or (
            (word in _UNFINISHED or word == "complete") and scan.status_failed
        ):
            found.append("status_regression")
        if self.progress and seen.has_progress and 0 <= seen.completed < scan.max_completed:
            found.append("progress_regression")
        if self.progress and word in ("scanning", "complete") and _zero(seen):
            found.append("zero_progress")
        if self.progress and seen.has_progress:
            scan.max_completed = max(scan.max_completed, seen.completed)
        scan.status_complete |= word == "complete"
        scan.status_failed |= word == "failed"
        return found

    def _results(self, scan: _Scan, word: str, *, live: bool) -> list[str]:
        found = []
        if word == "not_found" and live:
            found.append("results_404")
        if word in _UNFINISHED and scan.results_complete:
            found.append("status_regression")
        scan.results_complete |= word == "complete"
        return found

    def _leaks(self, scan: _Scan, scan_id: str, seen: Seen) -> bool:
        """A non-owner's answer leaks: not refused, or carrying the owner's data."""
        if scan.owner in seen.body_user_ids.split(","):
            return True
        for other in filter(None, seen.body_scan_ids.split(",")):
            known = self._scans.get(other)
            if other != scan_id and known is not None and known.owner == scan.owner:
                return True
        if seen.items > 0:
            return True
        return 200 <= seen.http_status < 300 and seen.body_status not in _REFUSALS


def _zero(seen: Seen) -> bool:
    """No progress, a zero total, or complete with fewer strategies than the total."""
    if not seen.has_progress or seen.total <= 0:
        return True
    return seen.body_status == "complete" and seen.completed < seen.total


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the snapshots of several processes (a master and its workers).

    >>> merge([{"ops": 2, "errors": 0, "anomalies": {"wrong_scan": 1}},
    ...        {"ops": 3, "errors": 1, "anomalies": {"wrong_scan": 2}}])
    {'ops': 5, 'errors': 1, 'anomalies': {'wrong_scan': 3}}
    """
    total: Counter[str] = Counter()
    for snap in snapshots:
        total.update(snap.get("anomalies", {}))
    return {
        "ops": sum(int(s.get("ops", 0)) for s in snapshots),
        "errors": sum(int(s.get("errors", 0)) for s in snapshots),
        "anomalies": {c: total[c] for c in ANOMALY_CLASSES if total[c]},
    }


def summary_line(snapshot: dict[str, Any]) -> str:
    """One line for the console and the runner's progress.

    >>> summary_line({"ops": 200, "errors": 1, "anomalies": {"wrong_scan": 50}})
    'answers 200  errors 1  anomalies so far: wrong_scan 50 (25.0%)'
    >>> summary_line({"ops": 0, "errors": 0, "anomalies": {}})
    'answers 0  errors 0  anomalies so far: none'
    """
    ops = int(snapshot.get("ops", 0))
    parts = [
        f"{c} {n} ({100 * n / ops:.1f}%)" if ops else f"{c} {n}"
        for c, n in snapshot.get("anomalies", {}).items()
    ]
    return (
        f"answers {ops}  errors {snapshot.get('errors', 0)}  "
        f"anomalies so far: {', '.join(parts) or 'none'}"
    )
