"""Verdicts: per-class counts, rates with 95% Wilson intervals, and the overall call.

Three-valued, as in Jepsen: a class that fails beats one whose checker could
not decide (``unknown``), which beats a pass. A checker that crashed yields
``unknown``, never ``pass``.

>>> wilson(0, 100)
(0.0, 0.037)
>>> v = decide([ClassResult(name="wrong_scan", count=3, opportunities=9)], thresholds={})
>>> v.verdict, v.classes["wrong_scan"].verdict, v.classes["results_404"].verdict
('fail', 'fail', 'pass')

Zero opportunities is not a pass. A run that tested nothing (``untested``: no
scan accepted, no answer from the app) is ``unknown`` with the reason, and so is
a run in which a class it should have exercised (``expected``) got no
opportunity; a failing class still beats both:

>>> quiet = ClassResult(name="wrong_scan", count=0, opportunities=9)
>>> v2 = decide([quiet], thresholds={}, expected={"results_404"})
>>> v2.verdict, v2.classes["results_404"].verdict, v2.classes["results_404"].expected
('unknown', 'unknown', True)
>>> print(v2.reasons[0])
not exercised: results_404 got no opportunity, though the run should exercise it

A class the service's shape makes meaningless (no tenants, no progress, no results
endpoint: :func:`harness.judging.checkers.not_applicable`) is *not applicable*: a word of
its own, with the reason; it is never a pass and never makes the run unknown:

>>> na = ClassResult.inapplicable("cross_tenant_leak", 'tenancy = "none": no tenants')
>>> v3 = decide([quiet, na], thresholds={}, expected={"cross_tenant_leak"})
>>> v3.verdict, v3.classes["cross_tenant_leak"].verdict
('pass', 'not_applicable')

``verdict.json`` carries a ``format`` number and each class's own verdict word,
threshold and whether it was exercised; readers (reports, tallies) display that
word and never re-decide it. :meth:`Verdict.from_json` is the one reader:

>>> Verdict.from_json(v.to_json(), source="verdict.json").classes["wrong_scan"].verdict
'fail'
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal

from harness.history.record import refuse_newer
from harness.history.schema import ANOMALY_CLASSES
from harness.judging.thresholds import Limit, as_limit

VerdictWord = Literal["pass", "fail", "unknown"]
VERDICT_WORDS: tuple[VerdictWord, ...] = ("pass", "fail", "unknown")
# A class's own word: a run's words, or "not_applicable" (the class means nothing for
# this service; ``ClassResult.not_applicable`` says why).
ClassWord = Literal["pass", "fail", "unknown", "not_applicable"]
NOT_APPLICABLE: Final = "not_applicable"
CLASS_WORDS: tuple[ClassWord, ...] = (*VERDICT_WORDS, "not_applicable")
# Classes added after verdict.json format 1 was fixed: a file without them was judged
# before they existed, which is not an unknown.
_NEWER_CLASSES: Final = frozenset({"terminal_unreadable"})
VERDICT_FORMAT = 1
VERDICT_JSON = "verdict.json"
_Z95 = 1.959963984540054
_COUNT_ZERO = Limit()  # the default: no unexcused anomaly passes


def wilson(count: int, n: int, *, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval for ``count`` successes in ``n`` trials, rounded to 4 places."""
    if n <= 0:
        return (0.0, 1.0)
    p = count / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


@dataclass(frozen=True, slots=True, kw_only=True)
class Witness:
    """One op that proves an anomaly, with the reason in words and the faults around it."""

    op: str
    scan_id: str
    tenant: str
    kind: str
    worker: int
    t_invoke_ns: int
    http_status: int
    body_status: str
    reason: str
    faults: tuple[str, ...] = ()  # fault ids active when the op ran


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassResult:
    """What one checker found for one anomaly class."""

    name: str
    count: int  # unexcused anomalies
    opportunities: int  # ops (or scans) that could have shown it
    excused: int = 0  # anomalies explained by a destructive fault on that scan's data
    excused_by: Mapping[str, int] = field(default_factory=dict)  # fault name -> count
    witnesses: tuple[Witness, ...] = ()
    # every unexcused anomaly's op id, in time order (at most MAX_ANOMALY_OPS): the
    # report's per-class timeline draws them all, the witnesses only tell the first
    anomaly_ops: tuple[str, ...] = ()
    fault_windows: Mapping[str, int] = field(default_factory=dict)  # fault id -> anomalies in it
    error: str = ""  # set when the checker crashed: the class is then unknown
    threshold: int | None = 0  # the largest unexcused count that passes; None: no count limit
    limit: Limit = _COUNT_ZERO  # every limit this class was judged by (set by decide)
    verdict: ClassWord | None = None  # this class's word; None until decide() has run
    # The run should have exercised this class (its scenario plans what it needs);
    # None when the run did not say (judged without a plan, or an older run.json).
    expected: bool | None = None
    # why the class means nothing for this service ("" when it applies): then its
    # word is "not_applicable", whatever the counts
    not_applicable: str = ""

    @classmethod
    def empty(cls, name: str) -> ClassResult:
        return cls(name=name, count=0, opportunities=0)

    @classmethod
    def crashed(cls, name: str, error: str) -> ClassResult:
        return cls(name=name, count=0, opportunities=0, error=error)

    @classmethod
    def inapplicable(cls, name: str, reason: str) -> ClassResult:
        """A class that means nothing for this service, and why."""
        return cls(name=name, count=0, opportunities=0, not_applicable=reason)

    @property
    def rate(self) -> float:
        return self.count / self.opportunities if self.opportunities else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson(self.count, self.opportunities)

    @property
    def exercised(self) -> bool:
        """Whether the run gave this class any opportunity to show an anomaly."""
        return self.opportunities > 0

    def over_limit(self, limit: int | Limit | Mapping[str, Any]) -> str:
        """Why this result breaks ``limit`` (a count, or a :class:`Limit` of count, rate
        and interval), or ``""``; a crashed checker breaks nothing (it is unknown), nor
        does a class that is not applicable."""
        if self.error or self.not_applicable:
            return ""
        return as_limit(limit).exceeded(self.count, self.opportunities, upper=self.ci95[1])

    def decided(
        self, threshold: int | Limit | Mapping[str, Any], *, need_data: bool = False
    ) -> ClassResult:
        """This result with its verdict word under ``threshold`` (a count or a
        :class:`Limit`): fail beats unknown (a crashed checker, or no opportunity when
        ``need_data``) beats pass; a class that is not applicable is ``not_applicable``."""
        limit = as_limit(threshold)
        word: ClassWord = (
            "not_applicable"
            if self.not_applicable
            else "unknown"
            if self.error
            else "fail"
            if self.over_limit(limit)
            else "unknown"
            if need_data and not self.exercised
            else "pass"
        )
        return replace(self, threshold=limit.count, limit=limit, verdict=word)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "threshold": self.threshold,
            "limit": self.limit.to_json(),
            "count": self.count,
            "opportunities": self.opportunities,
            "rate": round(self.rate, 6),
            "ci95": list(self.ci95),
            "exercised": self.exercised,
            "expected": self.expected,
            "excused": self.excused,
            "excused_by": dict(self.excused_by),
            "fault_windows": dict(self.fault_windows),
            "witnesses": [asdict(w) for w in self.witnesses],
            "anomaly_ops": list(self.anomaly_ops),
            "error": self.error,
            "not_applicable": self.not_applicable,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall call plus every class's result (all eight classes always present)."""

    verdict: VerdictWord
    classes: Mapping[str, ClassResult]
    reasons: tuple[str, ...] = ()  # why fail / unknown, one line each
    notes: tuple[str, ...] = ()  # said to the reader, but decided nothing (--partial)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": VERDICT_FORMAT,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "anomalies": {name: self.classes[name].to_json() for name in ANOMALY_CLASSES},
        }

    @classmethod
    def from_json(
        cls,
        doc: Mapping[str, Any],
        *,
        source: str,
        thresholds: Mapping[str, int | Limit] | None = None,
    ) -> Verdict:
        """Rebuild a verdict from ``verdict.json`` exactly as recorded, never re-decided;
        ``thresholds`` only serves files written before class words were recorded. A
        newer format is refused with one line."""
        return _verdict_from_json(doc, source=source, thresholds=thresholds)


def decide(
    results: Iterable[ClassResult],
    *,
    thresholds: Mapping[str, int | Limit],
    infrastructure_errors: Iterable[str] = (),
    untested: Iterable[str] = (),
    expected: Collection[str] | None = None,
    incomplete: str = "",
    not_understood: Iterable[str] = (),
) -> Verdict:
    """Combine class results into a verdict.

    ``thresholds`` maps a class to the largest unexcused count that still
    passes (default 0), or to a :class:`~harness.judging.thresholds.Limit` of
    count, rate and 95%-interval upper end (every one it sets must hold); a stored
    run's JSON form of a limit is read too. ``untested``: why the run tested nothing at all (one
    line each; every class without an opportunity is then unknown).
    ``expected``: the classes the run should have exercised; one of them without
    an opportunity is unknown (``None``: the run did not say). ``incomplete``:
    why the history stops early (a killed run). ``not_understood``: what the
    contract could not read in the answers (unknown status words, a status path
    that matched nothing). Each of these makes the verdict
    unknown with its reason, never fail: fail beats unknown beats pass. A class that
    is not applicable (``ClassResult.not_applicable``) decides nothing: it is neither
    expected nor unknown when nothing was tested.
    """
    by_name = {r.name: r for r in results}
    nothing = tuple(untested)
    moot = {name for name, r in by_name.items() if r.not_applicable}
    wanted = frozenset(expected) if expected is not None else None
    classes = {
        name: replace(
            by_name.get(name, ClassResult.empty(name)),
            expected=None if wanted is None else name in wanted and name not in moot,
        ).decided(
            thresholds.get(name, 0),
            need_data=bool(nothing) or (wanted is not None and name in wanted),
        )
        for name in ANOMALY_CLASSES
    }
    failed = [f"{name}: {why}" for name, r in classes.items() if (why := r.over_limit(r.limit))]
    unknown = [f"{name}: checker crashed: {r.error}" for name, r in classes.items() if r.error]
    unknown += list(nothing)
    idle = [n for n, r in classes.items() if r.expected and not r.error and not r.exercised]
    if idle and not nothing:  # when nothing was tested, that one reason says it all
        unknown.append(
            f"not exercised: {', '.join(idle)} got no opportunity, though the run should "
            f"exercise {'them' if len(idle) > 1 else 'it'}"
        )
    if incomplete:
        unknown.append(incomplete)
    unknown += [f"not understood: {why}" for why in not_understood]
    unknown += [f"infrastructure: {e}" for e in infrastructure_errors]
    if failed:
        return Verdict("fail", classes, tuple(failed + unknown))
    if unknown:
        return Verdict("unknown", classes, tuple(unknown))
    return Verdict("pass", classes)


# -- reading verdict.json ---------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _counts(raw: Any) -> dict[str, int]:
    return {str(k): _int(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _witness(raw: Mapping[str, Any]) -> Witness:
    faults = raw.get("faults") or ()
    return Witness(
        op=str(raw.get("op", "")),
        scan_id=str(raw.get("scan_id", "")),
        tenant=str(raw.get("tenant", "")),
        kind=str(raw.get("kind", "")),
        worker=_int(raw.get("worker"), -1),
        t_invoke_ns=_int(raw.get("t_invoke_ns")),
        http_status=_int(raw.get("http_status")),
        body_status=str(raw.get("body_status", "")),
        reason=str(raw.get("reason", "")),
        faults=tuple(str(f) for f in faults) if isinstance(faults, list | tuple) else (),
    )


def _class_from_json(name: str, raw: Any, threshold: int | Limit) -> ClassResult:
    if not isinstance(raw, Mapping):
        if name in _NEWER_CLASSES:
            why = "verdict.json was written before scanproof judged this class"
            return ClassResult.inapplicable(name, why).decided(threshold)
        return ClassResult.crashed(name, "missing from verdict.json").decided(threshold)
    witnesses = raw.get("witnesses") or []
    result = ClassResult(
        name=name,
        count=_int(raw.get("count")),
        opportunities=_int(raw.get("opportunities")),
        excused=_int(raw.get("excused")),
        excused_by=_counts(raw.get("excused_by")),
        fault_windows=_counts(raw.get("fault_windows")),
        witnesses=tuple(_witness(w) for w in witnesses if isinstance(w, Mapping)),
        anomaly_ops=tuple(str(op) for op in raw.get("anomaly_ops") or () if isinstance(op, str)),
        error=str(raw.get("error") or ""),
        expected=raw.get("expected") if isinstance(raw.get("expected"), bool) else None,
        not_applicable=str(raw.get("not_applicable") or ""),
    )
    word = raw.get("verdict")
    if word == NOT_APPLICABLE and not result.not_applicable:
        result = replace(result, not_applicable="not applicable (no reason recorded)")
    if word in CLASS_WORDS:  # as recorded: never re-decided
        recorded = raw.get("limit", raw.get("threshold", threshold))
        limit = as_limit(threshold if recorded is None else recorded)
        return replace(result, threshold=limit.count, limit=limit, verdict=word)
    return result.decided(threshold)  # written before verdict.json recorded class words


def _verdict_from_json(
    doc: Mapping[str, Any],
    *,
    source: str,
    thresholds: Mapping[str, int | Limit] | None = None,
) -> Verdict:
    refuse_newer(doc, supported=VERDICT_FORMAT, source=source)
    word = doc.get("verdict")
    anomalies = doc.get("anomalies")
    anomalies = anomalies if isinstance(anomalies, Mapping) else {}
    limits = thresholds or {}
    classes = {
        name: _class_from_json(name, anomalies.get(name), limits.get(name, 0))
        for name in ANOMALY_CLASSES
    }
    reasons = doc.get("reasons")
    said = [str(r) for r in reasons] if isinstance(reasons, list) else []
    raw_notes = doc.get("notes")
    notes = tuple(str(n) for n in raw_notes) if isinstance(raw_notes, list) else ()
    if word not in VERDICT_WORDS:
        said.append(f"{source} holds no verdict word (found {word!r})")
        return Verdict("unknown", classes, tuple(said), notes)
    return Verdict(word, classes, tuple(said), notes)
