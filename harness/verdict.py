"""Verdicts: per-class counts, rates with 95% Wilson intervals, and the overall call.

Three-valued, as in Jepsen: a class that fails beats one whose checker could
not decide (``unknown``), which beats a pass. A checker that crashed yields
``unknown``, never ``pass``.

>>> wilson(0, 100)
(0.0, 0.037)
>>> decide([ClassResult.empty("wrong_scan")], thresholds={}).verdict
'pass'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.schema import ANOMALY_CLASSES

VerdictWord = Literal["pass", "fail", "unknown"]
_Z95 = 1.959963984540054


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
    fault_windows: Mapping[str, int] = field(default_factory=dict)  # fault id -> anomalies in it
    error: str = ""  # set when the checker crashed: the class is then unknown

    @classmethod
    def empty(cls, name: str) -> ClassResult:
        return cls(name=name, count=0, opportunities=0)

    @classmethod
    def crashed(cls, name: str, error: str) -> ClassResult:
        return cls(name=name, count=0, opportunities=0, error=error)

    @property
    def rate(self) -> float:
        return self.count / self.opportunities if self.opportunities else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson(self.count, self.opportunities)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "opportunities": self.opportunities,
            "rate": round(self.rate, 6),
            "ci95": list(self.ci95),
            "excused": self.excused,
            "excused_by": dict(self.excused_by),
            "fault_windows": dict(self.fault_windows),
            "witnesses": [asdict(w) for w in self.witnesses],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall call plus every class's result (all eight classes always present)."""

    verdict: VerdictWord
    classes: Mapping[str, ClassResult]
    reasons: tuple[str, ...] = ()  # why fail / unknown, one line each

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "anomalies": {name: self.classes[name].to_json() for name in ANOMALY_CLASSES},
        }


def decide(
    results: Iterable[ClassResult],
    *,
    thresholds: Mapping[str, int],
    infrastructure_errors: Iterable[str] = (),
) -> Verdict:
    """Combine class results into a verdict.

    ``thresholds`` maps a class to the largest unexcused count that still
    passes (default 0). Fail beats unknown beats pass.
    """
    by_name = {r.name: r for r in results}
    classes = {name: by_name.get(name, ClassResult.empty(name)) for name in ANOMALY_CLASSES}
    failed = [
        f"{name}: {r.count} > {thresholds.get(name, 0)} allowed"
        for name, r in classes.items()
        if not r.error and r.count > thresholds.get(name, 0)
    ]
    unknown = [f"{name}: checker crashed: {r.error}" for name, r in classes.items() if r.error]
    unknown += [f"infrastructure: {e}" for e in infrastructure_errors]
    if failed:
        return Verdict("fail", classes, tuple(failed + unknown))
    if unknown:
        return Verdict("unknown", classes, tuple(unknown))
    return Verdict("pass", classes)
