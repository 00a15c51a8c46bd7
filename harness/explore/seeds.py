"""Explore's first examples: one short schedule per kind of bug services ship.

Hypothesis draws schedules at random. On a service whose scans take 10 s an
example that waits costs 10 s, so a 90 s search tries a few dozen schedules and
may never draw "the same tenant starts two scans with the same filters, then
asks for the first". Before its random search, ``scanproof explore`` runs these
schedules once each (cheapest first, spread over its lanes), as Hypothesis runs
a test's explicit examples before generated ones. A seed that fails goes
straight to minimisation; the random search runs only when every seed passed.

Nothing here knows a service: each seed is made of the rules of
:mod:`harness.explore.steps` (so it replays anywhere), its waits are in the
service's own seconds (:class:`~harness.explore.executor.ServiceTiming`), and a
seed is left out when it needs a rule the exploration does not allow
(``--rules``), a second worker or a second tenant.

>>> timing = ServiceTiming(time_scale=0.01, retention_s=5.4, scan_deadline_s=3.0,
...                        stated_retention_s=6.0)
>>> [s.name for s in seeds(timing, workers=4, tenants=2, rules=("discover", "status"))]
['a poll on another worker']
>>> [s.describe() for s in seeds(timing, workers=1, tenants=1, rules=RULES)][0]
'two scans of one tenant, same filters, at once: discover, rediscover, status, results'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from harness.explore.executor import ServiceTiming
from harness.explore.steps import RULES, Step

__all__ = ["Seed", "seeds"]

# The second worker's first poll of a staggered alternation, service seconds: long
# enough for progress to move, shorter than a cache that lives for a third of a scan.
_STAGGER_S = 50.0


@dataclass(frozen=True, slots=True)
class Seed:
    """A named schedule; ``waits``: it waits for a scan to end (costly on slow services)."""

    name: str
    steps: tuple[Step, ...]
    waits: bool = False

    def describe(self) -> str:
        return f"{self.name}: " + ", ".join(s.rule for s in self.steps)


def _all(workers: int, tenants: int, timing: ServiceTiming) -> tuple[tuple[Seed, int, int], ...]:
    """Every seed with the workers and tenants it needs."""
    other = 1 % workers
    third = 2 % workers
    # half the promised retention after the scan ended: results must still be there
    half_retention = timing.service_s(0.5 * (timing.stated_retention_s or timing.retention_s))
    return (
        (  # per-process state: the scan lives in the memory of the worker that started it
            Seed(
                "a poll on another worker",
                (
                    Step(rule="discover", pin=0),
                    Step(rule="status", scan=0, pin=other),
                    Step(rule="results", scan=0, pin=third),
                ),
            ),
            2,
            1,
        ),
        (  # a read path that skips the owner check (on the worker holding the scan)
            Seed(
                "another tenant asks the scan's worker",
                (Step(rule="discover", pin=0), Step(rule="probe", scan=0, tenant=0, pin=0)),
            ),
            1,
            2,
        ),
        (  # one result slot per tenant and filters: the second scan overwrites the first
            Seed(
                "two scans of one tenant, same filters, at once",
                (
                    Step(rule="discover"),
                    Step(rule="rediscover", scan=0, same=True),
                    Step(rule="status", scan=0),
                    Step(rule="results", scan=0),
                ),
            ),
            1,
            1,
        ),
        (  # a per-worker read cache: two workers answer from reads made at other moments
            Seed(
                "two workers' caches, staggered",
                (
                    Step(rule="discover", pin=0),
                    Step(rule="alternate", scan=0, pin=0, worker=other, seconds=_STAGGER_S),
                ),
                waits=True,
            ),
            2,
            1,
        ),
        (  # one slot per tenant: a later scan with other filters replaces a finished one
            Seed(
                "two scans of one tenant, other filters, back to back",
                (
                    Step(rule="discover"),
                    Step(rule="rediscover", scan=0, after=True),
                    Step(rule="results", scan=0),
                    Step(rule="status", scan=0),
                ),
                waits=True,
            ),
            1,
            1,
        ),
        (  # state in the process that ran the scan: lost when it is replaced
            Seed(
                "a worker restart while the scan runs",
                (
                    Step(rule="discover", pin=0),
                    Step(rule="restart", worker=0),
                    Step(rule="wait_complete", scan=0),
                ),
                waits=True,
            ),
            1,
            1,
        ),
        (  # TTL bugs: results or lookup keys that expire before the promised retention
            Seed(
                "results within the retention",
                (
                    Step(rule="discover"),
                    Step(rule="wait_complete", scan=0),
                    Step(rule="wait", seconds=half_retention),
                    Step(rule="results", scan=0),
                    Step(rule="status", scan=0),
                ),
                waits=True,
            ),
            1,
            1,
        ),
    )


def seeds(
    timing: ServiceTiming, *, workers: int, tenants: int, rules: Collection[str] = RULES
) -> tuple[Seed, ...]:
    """The seeds this exploration can run, cheapest first (those that wait last)."""
    allowed = frozenset(rules)
    kept = [
        seed
        for seed, need_workers, need_tenants in _all(workers, tenants, timing)
        if workers >= need_workers
        and tenants >= need_tenants
        and all(step.rule in allowed for step in seed.steps)
    ]
    return tuple(sorted(kept, key=lambda s: s.waits))
