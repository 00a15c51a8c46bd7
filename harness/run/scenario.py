"""Scenarios: the workload and the fault schedule of a run, as data.

Every duration in a scenario is in *service seconds*: seconds of the service
being modelled (the real scan took ~160 s, results lived 300 s). The runner
multiplies them by the service's time scale (the reference service reports it
at its meta endpoint; 1.0 for other apps), so one scenario fits both a scaled
reference service and a production-speed app.

A scenario file is TOML with the fields of :class:`Scenario` and a list of
``[[faults]]`` tables; ``scanproof validate FILE`` checks one:

.. code-block:: toml

    name = "my-evictions"
    tenants = 3
    duration = 1200.0
    [[faults]]
    at = 0.3
    fault = "delete_keys"
    key_class = "lookup"
    fraction = 0.5

>>> Scenario(name="tiny", tenants=1).tenants
1
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness._toml import field_types, read_toml, typed_value
from harness.errors import UsageError
from harness.targets.contract import KEY_CLASSES

# fault name -> the parameters it takes (name -> type), each optional with a default.
FAULT_PARAMS: Final[dict[str, dict[str, type]]] = {
    "delete_keys": {"key_class": str, "fraction": float},
    "expire_keys": {"key_class": str, "fraction": float},
    "evict": {"headroom_kb": int, "policy": str},
    "flush": {},
    "redis_restart": {},
    "redis_stall": {"duration": float},
    "redis_pause": {"duration": float},
    "worker_kill": {"worker": int, "down": float},
    "worker_pause": {"worker": int, "duration": float},
    "deploy": {"rolling": bool},
    "link_latency": {
        "worker": int,
        "links": int,
        "duration": float,
        "latency_ms": float,
        "jitter_ms": float,
        "direction": str,
    },
    "link_reset": {"worker": int, "links": int, "duration": float, "commands": int},
    "link_blackhole": {"worker": int, "links": int, "duration": float},
    "link_partition": {"worker": int, "links": int, "duration": float},
    # job workers (--job-workers); ``worker``: which one (-1: chosen by the seed)
    "job_worker_kill": {"worker": int, "down": float},
    "job_worker_pause": {"worker": int, "duration": float},
    "job_worker_restart": {"worker": int},
    # the contract's [keys] queue / inflight keys, dropped whole
    "drop_queued": {},
    "drop_inflight": {},
}
FAULT_NAMES: Final = tuple(FAULT_PARAMS)
#: Faults on one worker's own link to Redis: the run starts the cluster with links.
LINK_FAULTS: Final = frozenset(name for name in FAULT_NAMES if name.startswith("link_"))
#: Faults on the job workers: the run needs --job-workers.
JOB_FAULTS: Final = frozenset(name for name in FAULT_NAMES if name.startswith("job_worker_"))
#: Faults on the contract's queue key classes -> the class each drops.
QUEUE_FAULTS: Final = {"drop_queued": "queue", "drop_inflight": "inflight"}
LINK_DIRECTIONS: Final = ("both", "up", "down")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultStep:
    """One fault at ``at`` (a fraction 0..1 of the active phase)."""

    at: float
    fault: str
    key_class: str = "lookup"  # delete_keys / expire_keys
    fraction: float = 0.5  # of the matching keys
    headroom_kb: int = 64  # evict: maxmemory = used memory + this
    policy: str = "allkeys-lru"  # evict: noeviction makes writes fail with OOM instead
    duration: float = 20.0  # service seconds (stall, pause)
    worker: int = -1  # -1: chosen by the seed
    down: float = 10.0  # worker_kill: service seconds before the restart
    rolling: bool = False  # deploy: one worker at a time, or all at once
    links: int = 1  # link_*: how many workers' links (0: all), from `worker` or by the seed
    latency_ms: float = 50.0  # link_latency: real milliseconds added per direction
    jitter_ms: float = 0.0  # link_latency: plus uniform 0..jitter_ms per chunk
    direction: str = "both"  # link_latency: both | up (to Redis) | down (from Redis)
    commands: int = 1  # link_reset: commands let through before the resets begin

    def __post_init__(self) -> None:
        if self.fault not in FAULT_PARAMS:
            raise UsageError(f"fault {self.fault!r}: unknown; valid: {', '.join(FAULT_NAMES)}")
        if not 0.0 <= self.at <= 1.0:
            raise UsageError(f"fault {self.fault} at={self.at!r}: must be between 0 and 1")
        if self.key_class not in KEY_CLASSES:
            raise UsageError(
                f"fault {self.fault} key_class={self.key_class!r}: valid: {', '.join(KEY_CLASSES)}"
            )
        if not 0.0 < self.fraction <= 1.0:
            raise UsageError(f"fault {self.fault} fraction={self.fraction!r}: must be in (0, 1]")
        for name in ("duration", "down"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "duration" and value == 0):
                least = "> 0" if name == "duration" else ">= 0"
                raise UsageError(
                    f"fault {self.fault} {name}={value!r}: must be a finite number of "
                    f"service seconds {least}"
                )
        if self.fault in LINK_FAULTS:
            self._check_link()
        if self.fault == "evict":
            from harness.cluster.redis import EVICTION_POLICIES

            if self.policy not in EVICTION_POLICIES:
                raise UsageError(
                    f"fault evict policy={self.policy!r}: valid: "
                    f"{', '.join(sorted(EVICTION_POLICIES))}"
                )

    def _check_link(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise UsageError(
                    f"fault {self.fault} {name}={value!r}: must be a finite number of "
                    "milliseconds >= 0"
                )
        for name in ("links", "commands"):
            if getattr(self, name) < 0:
                raise UsageError(
                    f"fault {self.fault} {name}={getattr(self, name)!r}: must be >= 0 "
                    f"({'0 means every worker' if name == 'links' else 'commands let through'})"
                )
        if self.direction not in LINK_DIRECTIONS:
            raise UsageError(
                f"fault {self.fault} direction={self.direction!r}: valid: "
                f"{', '.join(LINK_DIRECTIONS)}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A workload plus a fault schedule. Durations in service seconds."""

    name: str
    description: str = ""
    tenants: int = 4
    scans_per_tenant: int = 3
    overlap: float = 0.5  # chance a tenant's next scan starts before the previous one ends
    same_filters: float = 0.5  # chance a scan reuses the tenant's previous filters
    poll_interval: float = 3.0
    results_every: int = 4  # fetch results on every n-th poll (and after completion)
    linger: float = 0.5  # keep polling this fraction of the retention after a terminal state
    probes: float = 0.5  # chance another tenant probes each scan (cross-tenant)
    failing: float = 0.0  # chance a scan is asked to fail (the contract's fail_body)
    duration: float = 1500.0  # the active phase: scans start and faults land within it
    recovery: float = 300.0  # quiet phase after the final heal
    workers: int = 4
    fresh_cluster: bool = False  # needs workers that have served nothing yet
    polls: int = 0  # >0: exactly this many polls per scan (seed-repro), then results
    faults: tuple[FaultStep, ...] = field(default=())

    def __post_init__(self) -> None:
        positive = ("tenants", "scans_per_tenant", "workers", "results_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(
                    f"scenario {self.name}: {name}={getattr(self, name)!r} must be >= 1"
                )
        for name in ("overlap", "same_filters", "probes", "linger", "failing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(
                    f"scenario {self.name}: {name}={getattr(self, name)!r} must be 0..1"
                )
        for name in ("poll_interval", "duration", "recovery"):
            value = getattr(self, name)
            least = ">= 0" if name == "recovery" else "> 0"
            if not math.isfinite(value) or value < 0 or (value == 0 and name != "recovery"):
                raise UsageError(
                    f"scenario {self.name}: {name}={value!r} must be a finite number of "
                    f"service seconds {least}"
                )
        if self.polls < 0:
            raise UsageError(f"scenario {self.name}: polls={self.polls!r} must be >= 0")


def check_fault_needs(
    faults: Iterable[FaultStep],
    *,
    job_workers: int,
    keys: Mapping[str, Sequence[str]],
    target: bool = False,
    shared_redis: bool = False,
) -> None:
    """Refuse, before anything starts, a fault the run cannot carry out (one line):
    a job worker fault without job workers (``job_workers`` is their count) or on a
    ``--target`` run, a queue fault whose key class the contract's ``keys`` leave
    empty, or one on a shared Redis (``shared_redis``: a ``redis://`` URL) whose
    patterns lack ``{run}`` (it would drop other runs' messages).

    >>> check_fault_needs([FaultStep(at=0.5, fault="job_worker_kill")], job_workers=0, keys={})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: fault 'job_worker_kill' at 0.5 needs job workers: pass ...
    >>> check_fault_needs([FaultStep(at=0.2, fault="drop_queued")], job_workers=1, keys={})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: fault 'drop_queued' at 0.2 needs the contract's [keys] queue ...
    """
    for step in sorted(faults, key=lambda s: s.at):
        where = f"fault {step.fault!r} at {step.at:g}"
        if step.fault in JOB_FAULTS:
            if target:
                raise UsageError(
                    f"{where} needs job workers scanproof starts; it cannot run with "
                    "--target: drop it from the scenario"
                )
            if job_workers < 1:
                raise UsageError(
                    f'{where} needs job workers: pass --job-workers "CMD" (e.g. '
                    '"celery -A app worker") or drop the fault'
                )
        key_class = QUEUE_FAULTS.get(step.fault)
        if key_class is None:
            continue
        patterns = tuple(keys.get(key_class, ()))
        if not patterns:
            example = '["celery"]' if key_class == "queue" else '["unacked", "unacked_index"]'
            raise UsageError(
                f"{where} needs the contract's [keys] {key_class} patterns (e.g. "
                f"{key_class} = {example}); add them or drop the fault"
            )
        unbound = [p for p in patterns if "{run}" not in p]
        if shared_redis and unbound:
            raise UsageError(
                f"{where}: on a shared --redis URL the [keys] {key_class} pattern "
                f"{unbound[0]!r} must contain {{run}} (the workers' SCANPROOF_RUN_ID) so "
                "no other run's messages are dropped; namespace the queue or use scanproof's "
                "own Redis"
            )


_SCENARIO_TYPES: Final = field_types(Scenario, skip=("faults",))
_FAULT_TYPES: Final = field_types(FaultStep)


def scenario_from_mapping(data: Mapping[str, Any], *, source: str) -> Scenario:
    """Build a scenario from parsed TOML; every error names the source and the field."""
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name == "faults":
            if not isinstance(value, list):
                raise UsageError(f"{source}: 'faults' must be an array of tables ([[faults]])")
            kwargs["faults"] = tuple(
                _fault_from_mapping(v, source=f"{source} faults[{i}]") for i, v in enumerate(value)
            )
            continue
        if name not in _SCENARIO_TYPES:
            valid = ", ".join(sorted([*_SCENARIO_TYPES, "faults"]))
            raise UsageError(f"{source}: unknown field {name!r}; valid fields: {valid}")
        kwargs[name] = typed_value(source, name, value, _SCENARIO_TYPES[name])
    if "name" not in kwargs:
        raise UsageError(f"{source}: missing field 'name' (add name = \"my-scenario\")")
    try:
        return Scenario(**kwargs)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def _fault_from_mapping(data: Any, *, source: str) -> FaultStep:
    if not isinstance(data, Mapping):
        raise UsageError(f"{source}: must be a table with at least 'at' and 'fault'")
    for required in ("at", "fault"):
        if required not in data:
            raise UsageError(f"{source}: missing field {required!r}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _FAULT_TYPES:
            raise UsageError(
                f"{source}: unknown field {name!r}; valid fields: {', '.join(sorted(_FAULT_TYPES))}"
            )
        kwargs[name] = typed_value(source, name, value, _FAULT_TYPES[name])
    try:
        return FaultStep(**kwargs)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def load_scenario_file(path: Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    data = read_toml(path)
    return scenario_from_mapping(data, source=str(path))
