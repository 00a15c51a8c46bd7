"""The named scenarios. ``mixed`` is the default of ``scanproof run``.

Durations are service seconds (see :mod:`harness.run.scenario`); with the
reference service's default time scale of 0.01, 100 service seconds take 1 s.

>>> sorted(SCENARIOS)[:3]
['cross-tenant', 'deploy', 'evict']
"""

from __future__ import annotations

from harness.errors import UsageError
from harness.run.scenario import FaultStep, Scenario

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="steady",
            description="Concurrent scans with no faults: what the service does on a good day.",
        ),
        Scenario(
            name="evict",
            description="Real LRU eviction: maxmemory squeezed just above what Redis uses.",
            faults=(FaultStep(at=0.3, fault="evict", headroom_kb=32),),
        ),
        Scenario(
            name="expire",
            description="Lookup and index keys expire early, then result keys.",
            faults=(
                FaultStep(at=0.3, fault="expire_keys", key_class="lookup", fraction=0.5),
                FaultStep(at=0.5, fault="expire_keys", key_class="index", fraction=0.5),
                FaultStep(at=0.7, fault="delete_keys", key_class="active", fraction=0.5),
            ),
        ),
        Scenario(
            name="kill",
            description="A worker is killed with SIGKILL mid-scan and restarted; another pauses.",
            faults=(
                FaultStep(at=0.25, fault="worker_kill", down=20.0),
                FaultStep(at=0.6, fault="worker_pause", duration=15.0),
                FaultStep(at=0.75, fault="worker_kill", down=5.0),
            ),
        ),
        Scenario(
            name="redis-outage",
            description="Redis stalls (SIGSTOP) and later restarts empty.",
            faults=(
                FaultStep(at=0.3, fault="redis_stall", duration=10.0),
                FaultStep(at=0.65, fault="redis_restart"),
            ),
        ),
        Scenario(
            name="deploy",
            description="Every worker restarts, once all at once and once rolling.",
            faults=(
                FaultStep(at=0.3, fault="deploy", rolling=False),
                FaultStep(at=0.7, fault="deploy", rolling=True),
            ),
        ),
        Scenario(
            name="cross-tenant",
            description="Every scan is probed by another tenant, mid-scan and after.",
            probes=1.0,
        ),
        Scenario(
            name="mixed",
            description="The default: overlapping scans, probes, key loss, a kill and a stall.",
            tenants=4,
            scans_per_tenant=3,
            duration=1500.0,
            faults=(
                FaultStep(at=0.2, fault="delete_keys", key_class="lookup", fraction=0.3),
                FaultStep(at=0.4, fault="worker_kill", down=20.0),
                FaultStep(at=0.6, fault="redis_stall", duration=30.0),
                FaultStep(at=0.8, fault="worker_pause", duration=30.0),
            ),
        ),
        Scenario(
            name="partition",
            description=(
                "One worker cut from Redis for a while (connects refused, open connections "
                "reset), later another; the rest stay healthy."
            ),
            faults=(
                FaultStep(at=0.25, fault="link_partition", duration=150.0),
                FaultStep(at=0.6, fault="link_partition", duration=150.0),
            ),
        ),
        Scenario(
            name="flaky-link",
            description=(
                "Every worker's link to Redis slows with jitter, then resets mid-command-group."
            ),
            faults=(
                FaultStep(
                    at=0.2,
                    fault="link_latency",
                    links=0,
                    latency_ms=20.0,
                    jitter_ms=20.0,
                    duration=200.0,
                ),
                FaultStep(at=0.45, fault="link_reset", links=0, commands=2, duration=60.0),
                FaultStep(at=0.7, fault="link_reset", links=0, commands=1, duration=60.0),
            ),
        ),
        Scenario(
            name="seed-repro",
            description=(
                "The production test: one tenant, one scan, 60 polls 3 s apart on a freshly "
                "started 4-worker cluster, then results."
            ),
            tenants=1,
            scans_per_tenant=1,
            overlap=0.0,
            probes=0.0,
            polls=60,
            poll_interval=3.0,
            duration=10.0,
            recovery=0.0,
            fresh_cluster=True,
        ),
    )
}
DEFAULT_SCENARIO = "mixed"


def get_scenario(name: str) -> Scenario:
    """A scenario by name; an unknown name lists the valid ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"--scenario {name!r}: no such scenario; valid: {', '.join(SCENARIOS)} "
            "(or a path to a scenario .toml file)"
        ) from None
