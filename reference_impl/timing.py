"""Every duration of the real service, multiplied by one ``time_scale``.

Constants are the real service's values in seconds; :class:`Timing` scales them
(default 0.01: a ~160 s scan takes ~1.6 s, a finished result lives ~3 s) and
draws the seeded strategy runtimes and opportunities.

>>> t = Timing(time_scale=0.01, seed=7)
>>> t.ms(RESULT_TTL_S), round(t.s(SCAN_BUDGET_S), 2)
(3000, 1.5)
>>> t.strategy_runtimes_s("alice", "digest", 3) == t.strategy_runtimes_s("alice", "digest", 3)
True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from reference_impl.clock import SYSTEM_CLOCK, Clock

DEFAULT_TIME_SCALE = 0.01
MAX_TIME_SCALE = 100.0

# Redis TTLs, as the real service sets them.
RESULT_TTL_S = 300.0
PARTIAL_TTL_S = 300.0
SCAN_TTL_S = 300.0  # the active flag
LOOKUP_TTL_S = 300.0  # before the merge: written once at start
LOOKUP_TTL_FIXED_S = max(RESULT_TTL_S, PARTIAL_TTL_S, SCAN_TTL_S) + 300.0  # = 600
SOUND_RETENTION_S = LOOKUP_TTL_FIXED_S  # sound keeps every key of a scan this long

# Scan lifecycle (section 4): preamble steps, then N strategies concurrently.
PREAMBLE_STEPS_S: tuple[tuple[str, float], ...] = (
    ("profile", 1.5),
    ("portfolio", 1.5),
    ("asset_discovery", 1.5),
)
FORCE_REFRESH_REWRITE_AT_S = 5.0  # placeholder rewritten ~5 s in under force_refresh
STRATEGY_SETUP_DONE_AT_S = 24.0  # market data loaded, strategies start
STRATEGY_MIN_S = 100.0
STRATEGY_MAX_S = 135.0  # a 15 s margin under the 150 s budget
SCAN_BUDGET_S = 150.0
EXPECTED_SCAN_S = 160.0
DEADLINE_MARGIN_S = 30.0
DEFAULT_TOTAL_STRATEGIES = 14
FRESH_RESULT_S = 120.0  # a complete result younger than this is reused (fresh-cache shortcut)

# Redis connection manager (section 1).
HEALTH_CHECK_INTERVAL_S = 30.0
BREAKER_FAILURES = 5
BREAKER_OPEN_S = 300.0

# Sound's per-worker heartbeat lease; floored in real time so an event-loop stall
# on a loaded machine is not mistaken for a dead worker.
WORKER_LEASE_S = 30.0
WORKER_LEASE_FLOOR_REAL_S = 0.5
# The budget keeps at least this much real time above the longest strategy, so a
# short event-loop stall at a small time scale does not fail a healthy scan (at
# 0.01 the margin is 150 ms anyway; at 0.005 it would be only 75 ms).
BUDGET_MARGIN_FLOOR_REAL_S = 0.15

RATE_LIMIT_PER_MINUTE = 30  # per user per worker, real (unscaled) minutes

STRATEGY_NAMES: tuple[str, ...] = (
    "momentum", "mean_reversion", "breakout", "pairs", "volatility", "carry", "value",
    "growth", "dividend", "earnings_drift", "options_skew", "sector_rotation", "macro", "arbitrage",
)  # fmt: skip
_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "XOM", "BTC-USD")


def time_scale_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a time scale, or None.

    >>> time_scale_problem(0)
    'must be a number in (0, 100], e.g. 0.01'
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and 0 < value <= MAX_TIME_SCALE)
    ):
        return f"must be a number in (0, {MAX_TIME_SCALE:g}], e.g. {DEFAULT_TIME_SCALE:g}"
    return None


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Scaled durations and seeded draws for one service instance."""

    time_scale: float = DEFAULT_TIME_SCALE
    seed: int = 0
    # Where the service reads time (sleeps go through the event loop); unit tests inject
    # a virtual clock.
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False)

    def s(self, real_seconds: float) -> float:
        """``real_seconds`` of the real service, scaled, in seconds."""
        return real_seconds * self.time_scale

    def ms(self, real_seconds: float) -> int:
        """``real_seconds`` scaled, in whole milliseconds (at least 1: PX 0 is an error)."""
        return max(1, round(real_seconds * self.time_scale * 1000))

    @property
    def scan_deadline_s(self) -> float:
        """By when a live scan must be complete or failed (scaled)."""
        return self.s(STRATEGY_SETUP_DONE_AT_S + SCAN_BUDGET_S + DEADLINE_MARGIN_S)

    @property
    def scan_budget_s(self) -> float:
        """How long the strategies may run (scaled, with a real-time floor on its margin)."""
        return max(self.s(SCAN_BUDGET_S), self.s(STRATEGY_MAX_S) + BUDGET_MARGIN_FLOOR_REAL_S)

    @property
    def worker_lease_s(self) -> float:
        return max(self.s(WORKER_LEASE_S), WORKER_LEASE_FLOOR_REAL_S)

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join([str(self.seed), *map(str, parts)]))

    def strategy_runtimes_s(self, user_id: str, filters_digest: str, n: int) -> list[float]:
        """Scaled runtime of each of ``n`` strategies; depends only on seed, user and filters."""
        rng = self._rng("runtime", user_id, filters_digest)
        return [self.s(rng.uniform(STRATEGY_MIN_S, STRATEGY_MAX_S)) for _ in range(n)]

    def opportunities(
        self, user_id: str, filters_digest: str, strategy_index: int
    ) -> list[tuple[str, float]]:
        """(symbol, score) pairs one strategy finds: 0-3, deterministic."""
        rng = self._rng("opps", user_id, filters_digest, strategy_index)
        return [
            (rng.choice(_SYMBOLS), round(rng.uniform(0.5, 1.0), 3))
            for _ in range(rng.randint(0, 3))
        ]
