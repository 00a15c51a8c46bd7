"""Decide, then do: a seeded plan of scans and faults, fixed before the run starts.

>>> from scenarios.catalogue import get_scenario
>>> a = make_plan(get_scenario("mixed"), seed=7)
>>> a == make_plan(get_scenario("mixed"), seed=7)
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.scenario import FaultStep, Scenario

ASSETS = ("BTC", "ETH", "SOL", "ADA")
DEFAULT_SCAN_S = 165.0  # the real scan took 160-174 service seconds


@dataclass(frozen=True, slots=True)
class ScanScript:
    """One scan to start: who, when (service seconds from the start), with which filters."""

    index: int
    tenant: str
    start_s: float
    filters: tuple[tuple[str, str], ...]  # empty: no filters (one shared result slot)
    prober: str  # the tenant that probes this scan, "" for none
    probe_at_poll: int  # the probe is sent after this many owner polls
    fail: bool = False  # ask the service to fail this scan


@dataclass(frozen=True, slots=True)
class PlannedFault:
    at_s: float
    step: FaultStep
    worker: int  # resolved worker index for worker faults, -1 otherwise


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: Scenario
    seed: int
    tenants: tuple[str, ...]
    scans: tuple[ScanScript, ...]
    faults: tuple[PlannedFault, ...]
    heal_at_s: float  # when the final heal runs (end of the active phase)
    end_s: float  # when the run stops at the latest


def make_plan(scenario: Scenario, *, seed: int, scan_s: float = DEFAULT_SCAN_S) -> Plan:
    """The whole run, decided from ``seed``; same inputs, same plan."""
    rng = random.Random(f"{scenario.name}:{seed}")
    tenants = tuple(f"tenant{i}-{rng.getrandbits(24):06x}" for i in range(scenario.tenants))
    scans: list[ScanScript] = []
    slot = scenario.duration / scenario.scans_per_tenant
    for tenant in tenants:
        filters: tuple[tuple[str, str], ...] = ()
        previous = -1.0
        for k in range(scenario.scans_per_tenant):
            # Spread scans over the active phase so faults meet live scans; some start
            # while the tenant's previous scan is still running.
            if previous >= 0 and rng.random() < scenario.overlap:
                t = previous + scan_s * rng.uniform(0.1, 0.6)
            else:
                t = slot * k + rng.uniform(0.0, slot * 0.5)
            t = min(t, scenario.duration)
            if k == 0 or rng.random() >= scenario.same_filters:
                filters = () if rng.random() < 0.4 else (("asset", rng.choice(ASSETS)),)
            prober = ""
            if len(tenants) > 1 and rng.random() < scenario.probes:
                prober = rng.choice([x for x in tenants if x != tenant])
            scans.append(
                ScanScript(
                    index=len(scans),
                    tenant=tenant,
                    start_s=round(t, 3),
                    filters=filters,
                    prober=prober,
                    probe_at_poll=rng.randint(1, 6),
                    fail=scenario.failing > 0 and rng.random() < scenario.failing,
                )
            )
            previous = t
    faults = tuple(
        sorted(
            (
                PlannedFault(
                    at_s=round(step.at * scenario.duration, 3),
                    step=step,
                    worker=_worker(step, scenario, rng),
                )
                for step in scenario.faults
            ),
            key=lambda f: f.at_s,
        )
    )
    scans.sort(key=lambda s: (s.start_s, s.index))
    end_s = scenario.duration + scenario.recovery
    if scenario.polls and scans:  # a fixed poll count: room for every poll and the results
        end_s = max(end_s, scans[-1].start_s + (scenario.polls + 2) * scenario.poll_interval)
    return Plan(
        scenario=scenario,
        seed=seed,
        tenants=tenants,
        scans=tuple(scans),
        faults=faults,
        heal_at_s=scenario.duration,
        end_s=end_s,
    )


def _worker(step: FaultStep, scenario: Scenario, rng: random.Random) -> int:
    if step.fault not in ("worker_kill", "worker_pause"):
        return -1
    if step.worker >= 0:
        return step.worker % scenario.workers
    return rng.randrange(scenario.workers)
