"""The statistics behind matrix, claims and baseline comparisons: pure functions, no I/O.

Every rate is a count of anomalies out of a number of opportunities (polls,
fetches, scans). Intervals are 95% Wilson score intervals (honest at 0 and at
small n), differences of two rates get Newcombe's hybrid score interval (built
from the two Wilson intervals), and "is the candidate worse than the baseline"
is a pooled two-proportion z-test with its p-value from the normal CDF.

>>> Tally(0, 100).ci95[1] > 0.03  # 0 of 100 still allows a rate of ~3.7%
True
>>> round(two_proportion_test(Tally(1, 400), Tally(30, 400)).p_greater, 6)
0.0
>>> opportunities_for_upper_bound(0, 0.01)  # 0 of 381 puts the upper bound below 1%
381
>>> difference(Tally(40, 100), Tally(10, 100)).measurable
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
_MAX_SEARCH = 10**12  # more opportunities than any run could have: "never decides"


def wilson(count: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``count`` of ``n`` (unrounded; ``(0, 1)`` when n is 0)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= count <= n:
        raise ValueError(f"count {count} must be between 0 and n={n}")
    p = count / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact ends at 0 of n and n of n (rounding would otherwise print 1e-15%).
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == n else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True, slots=True)
class Tally:
    """``count`` anomalies out of ``opportunities``, with the rate and its 95% interval."""

    count: int
    opportunities: int

    def __post_init__(self) -> None:
        if self.opportunities < 0 or self.count < 0:
            raise ValueError(f"bad tally {self.count} of {self.opportunities}: must be >= 0")

    @property
    def rate(self) -> float:
        return self.count / self.opportunities if self.opportunities else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson(min(self.count, self.opportunities), self.opportunities)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.count + other.count, self.opportunities + other.opportunities)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class TwoProportion:
    """A pooled two-proportion z-test of candidate against baseline.

    ``p_greater``: one-sided p-value that the candidate's rate is higher;
    ``p_less``: that it is lower. Both are 1.0 when the test cannot say anything
    (no opportunities on one side, or no variation at all: 0 of n on both sides).
    """

    z: float
    p_greater: float
    p_less: float
    testable: bool


def two_proportion_test(baseline: Tally, candidate: Tally) -> TwoProportion:
    """Test ``candidate`` against ``baseline`` (see :class:`TwoProportion`)."""
    n1, n2 = baseline.opportunities, candidate.opportunities
    if n1 <= 0 or n2 <= 0:
        return TwoProportion(0.0, 1.0, 1.0, False)
    pooled = (baseline.count + candidate.count) / (n1 + n2)
    if pooled <= 0.0 or pooled >= 1.0:
        # Identical all-or-nothing outcomes on both sides: no evidence of any difference.
        return TwoProportion(0.0, 1.0, 1.0, False)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (candidate.rate - baseline.rate) / se
    return TwoProportion(z, normal_sf(z), normal_sf(-z), True)


@dataclass(frozen=True, slots=True)
class Difference:
    """``a.rate - b.rate`` with Newcombe's 95% hybrid score interval."""

    estimate: float
    low: float
    high: float

    @property
    def measurable(self) -> bool:
        """False when the interval contains 0: no measurable effect."""
        return not self.low <= 0.0 <= self.high


def difference(a: Tally, b: Tally) -> Difference:
    """Newcombe (1998, method 10): the difference of two rates from their Wilson intervals.

    With no opportunities on a side, that side's interval is 0..1, so the
    difference's interval contains 0: "no measurable effect", since nothing was measured.
    """
    p1, p2 = a.rate, b.rate
    l1, u1 = a.ci95
    l2, u2 = b.ci95
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(d, max(-1.0, low), min(1.0, high))


def opportunities_for_upper_bound(count: int, tolerance: float) -> int:
    """The least n with the Wilson upper bound of ``count`` of n below ``tolerance``.

    For ``count == 0`` that is the closed form n > z^2 (1 - t) / t (381 for 1%);
    otherwise a search, assuming no further anomaly among the extra opportunities.
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance {tolerance!r} must be between 0 and 1")
    if count == 0:
        return math.floor(Z95 * Z95 * (1 - tolerance) / tolerance) + 1
    lo, hi = max(count, 1), max(count, 1)
    while wilson(count, hi)[1] >= tolerance:
        if hi >= _MAX_SEARCH:
            return _MAX_SEARCH
        lo, hi = hi, hi * 2
    while lo < hi:  # the least n in (lo, hi] whose upper bound is below the tolerance
        mid = (lo + hi) // 2
        if wilson(count, mid)[1] < tolerance:
            hi = mid
        else:
            lo = mid + 1
    return hi


def opportunities_to_separate(rate: float, threshold: float, observed: int) -> int:
    """More opportunities until the interval of ``rate`` excludes ``threshold`` (rate kept).

    0 when it already does; :data:`_MAX_SEARCH` when ``rate == threshold``.
    """
    if rate == threshold:
        return _MAX_SEARCH

    def separated(n: int) -> bool:
        lo, hi = wilson(round(rate * n), n)
        return hi < threshold if rate < threshold else lo > threshold

    if observed > 0 and separated(observed):
        return 0
    hi = max(observed, 1)
    while not separated(hi):
        if hi >= _MAX_SEARCH:
            return _MAX_SEARCH
        hi *= 2
    lo = max(observed, 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if separated(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi - observed
