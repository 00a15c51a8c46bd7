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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness._toml import field_types, read_toml, typed_value
from harness.contract import KEY_CLASSES
from harness.errors import UsageError

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
}
FAULT_NAMES: Final = tuple(FAULT_PARAMS)


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
        if self.duration <= 0 or self.down < 0:
            raise UsageError(f"fault {self.fault}: duration and down must be positive seconds")
        if self.fault == "evict":
            from harness._redis_base import EVICTION_POLICIES

            if self.policy not in EVICTION_POLICIES:
                raise UsageError(
                    f"fault evict policy={self.policy!r}: valid: "
                    f"{', '.join(sorted(EVICTION_POLICIES))}"
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
        for name in ("poll_interval", "duration"):
            if getattr(self, name) <= 0:
                raise UsageError(f"scenario {self.name}: {name} must be > 0 service seconds")
        if self.recovery < 0 or self.polls < 0:
            raise UsageError(f"scenario {self.name}: recovery and polls must be >= 0")


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
