"""Decide, then do: a seeded plan of scans and faults, fixed before the run starts.

>>> from scenarios.catalogue import get_scenario
>>> a = make_plan(get_scenario("mixed"), seed=7)
>>> a == make_plan(get_scenario("mixed"), seed=7)
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.history.schema import ANOMALY_CLASSES
from harness.run.scenario import FaultStep, Scenario
from harness.targets.contract import Contract

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
    links: tuple[int, ...] = ()  # link faults: the workers whose links it acts on


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
                    links=_links(step, scenario, rng),
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


def _links(step: FaultStep, scenario: Scenario, rng: random.Random) -> tuple[int, ...]:
    """The workers a link fault acts on: all (``links = 0``), ``links`` consecutive ones
    from a named ``worker``, or ``links`` chosen by the seed.

    >>> from harness.run.scenario import FaultStep, Scenario
    >>> _links(FaultStep(at=0, fault="link_partition", worker=3, links=2),
    ...        Scenario(name="s", workers=4), random.Random(0))
    (0, 3)
    """
    if not step.fault.startswith("link_"):
        return ()
    n = scenario.workers
    count = n if step.links == 0 else min(step.links, n)
    if step.worker >= 0:
        return tuple(sorted({(step.worker + k) % n for k in range(count)}))
    return tuple(sorted(rng.sample(range(n), count)))


# What every planned scan does with a working app: its owner polls it while it is
# live and fetches its results.
_EVERY_SCAN = ("status_not_found", "results_404")
_PROGRESS = ("zero_progress", "progress_regression")


def _watched_past_deadline(plan: Plan, scan_deadline_s: float) -> bool:
    """Whether some scan accepted before the final heal is still watched when its
    deadline passes, so that ``stuck_scan`` is decided for it whatever the app does."""
    scenario = plan.scenario
    for scan in plan.scans:
        until = plan.end_s
        if scenario.polls:  # the driver stops after a fixed number of polls
            until = min(until, scan.start_s + scenario.polls * scenario.poll_interval)
        if scan.start_s < plan.heal_at_s and scan.start_s + scan_deadline_s <= until:
            return True
    return False


def expected_classes(
    plan: Plan,
    contract: Contract,
    *,
    scan_deadline_s: float | None = None,
    driver: str = "scripted",
) -> tuple[str, ...]:
    """The anomaly classes a run of ``plan`` should exercise (in the canonical order).

    A small, explicit rule; a class listed here that gets no opportunity makes the
    verdict unknown (the run tested less than it set out to), never pass:

    - with at least one planned scan: ``status_not_found`` (owner polls of live
      scans) and ``results_404`` (every scan's results are fetched) when the contract
      has a results endpoint;
    - ``stuck_scan`` when some scan accepted before the final heal is still watched
      when its deadline (``scan_deadline_s``, service seconds as judged) passes;
    - the progress classes when the contract names a progress field;
    - ``cross_tenant_leak`` when some scan has a prober (the scripted driver; locust
      users probe only scans they happen to know of, so it is not promised there);
      without tenants (``tenancy = "none"``) the probes ask about never-issued ids,
      and ``wrong_scan`` is promised instead.

    ``status_regression``, ``terminal_unreadable`` and (with tenants) ``wrong_scan``
    are never promised: they need scans seen finished, or answers that echo the scan
    id, which a correct app may not give.

    >>> from harness.run.scenario import Scenario
    >>> plan = make_plan(Scenario(name="solo", tenants=1), seed=0)
    >>> expected_classes(plan, Contract(), scan_deadline_s=250.0)
    ('status_not_found', 'results_404', 'zero_progress', 'progress_regression', 'stuck_scan')
    """
    if not plan.scans:
        return ()
    wanted = set(_EVERY_SCAN) if contract.has_results else {"status_not_found"}
    if scan_deadline_s is not None and _watched_past_deadline(plan, scan_deadline_s):
        wanted.add("stuck_scan")
    if contract.progress_field:
        wanted.update(_PROGRESS)
    if driver == "scripted" and any(s.prober for s in plan.scans):
        wanted.add("cross_tenant_leak" if contract.tenants else "wrong_scan")
    return tuple(name for name in ANOMALY_CLASSES if name in wanted)
