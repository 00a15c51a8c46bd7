"""The exploration state machine: hypothesis draws schedules, the checkers judge them.

Rules (see :mod:`harness._explore_steps` for their fields): start a scan as some
tenant; poll status or fetch results as its owner, through the router or pinned
to one worker; wait until a scan is complete (bounded); a cross-tenant probe;
wait a while; delete or expire one class of keys; kill, restart or pause a
worker; deploy; stall Redis. The invariant is the chaos-run checkers applied to
the example's history, judged once when the example ends (a judgement costs
~0.1 s; anomalies do not go away, so judging after every step finds nothing more).

One cluster serves a whole exploration; every example starts from clean state
(Redis flushed, every worker a fresh process, fresh tenant names), which is what
makes an example replay the same way and so lets hypothesis shrink it.

>>> result = explore(ExploreConfig(preset="claimed-fix", max_examples=30))  # doctest: +SKIP
>>> print(result.command)  # doctest: +SKIP
scanproof replay scanproof-runs/explore-.../shrunk.toml --repeat 10 --preset claimed-fix
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import HypothesisException
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness import schema as S
from harness._explore_exec import (
    Example,
    ServiceTiming,
    read_timing,
    reset_cluster,
)
from harness._explore_exec import (
    reference_env as _reference_env,
)
from harness._explore_steps import RULES, ReplayFile, Step, dumps_replay
from harness.cluster import Cluster
from harness.contract import KEY_CLASSES, Contract
from harness.errors import InfrastructureError, UsageError

DEFAULT_TIME_SCALE: Final = 0.003  # a scan takes ~0.5 s: examples stay quick
PROFILE_ENV: Final = "SCANPROOF_HYPOTHESIS_PROFILE"
_SUPPRESS: Final = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
_COMMON: Final[dict[str, Any]] = {
    "deadline": None,
    "suppress_health_check": _SUPPRESS,
    "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    "print_blob": False,
    "report_multiple_bugs": False,
}
# name -> settings. ci: the same examples every run, no database (CI never depends on
# earlier runs); dev: random, failures remembered in .hypothesis/; thorough: longer.
PROFILES: Final[dict[str, dict[str, Any]]] = {
    "ci": {"max_examples": 100, "derandomize": True, "database": None, "stateful_step_count": 8},
    "dev": {"max_examples": 100, "derandomize": False, "stateful_step_count": 8},
    "thorough": {"max_examples": 1000, "derandomize": False, "stateful_step_count": 12},
}
_WAITS: Final = (5.0, 15.0, 50.0, 300.0)  # service seconds; 300: past a result's TTL
_PAUSES: Final = (5.0, 10.0, 20.0)  # below sound's 30 s worker lease
_DOWNS: Final = (0.0, 10.0, 30.0)
_ASSETS: Final = ("", "BTC", "ETH")
Progress = Callable[[str], None]


class _ShrinkBudgetSpent(BaseException):
    """Stops hypothesis's shrinking (a BaseException: hypothesis does not catch it)."""


class AnomalyFound(AssertionError):
    """An example's history has unexcused anomalies of a class that counts."""


# One exception type per class: hypothesis tells failures apart by type, so shrinking
# an example that showed one class never wanders off to an example showing another.
_ANOMALY: Final[dict[str, type[AnomalyFound]]] = {
    name: type(f"AnomalyFound_{name}", (AnomalyFound,), {}) for name in S.ANOMALY_CLASSES
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreConfig:
    """What to explore and how hard. ``classes``: the anomaly classes that count as a
    finding (default: all eight); ``rules``: the rules hypothesis may draw (default: all)."""

    preset: str | None = None  # reference service only; default claimed-fix
    flags: Mapping[str, Any] = field(default_factory=dict)  # reference service overrides
    app: str = "reference_impl.app:app"
    workers: int = 4
    tenants: int = 2
    redis: str = "auto"  # server when redis-server is on PATH: sound on fakeredis is slow
    time_scale: float = DEFAULT_TIME_SCALE  # reference service only
    profile: str | None = None  # default: $SCANPROOF_HYPOTHESIS_PROFILE, else "ci"
    max_examples: int | None = None
    step_count: int | None = None
    classes: tuple[str, ...] = S.ANOMALY_CLASSES
    rules: tuple[str, ...] = RULES
    out: Path | None = None
    # hypothesis shrinks for at most this long after the first failure; then the
    # smallest failure so far is minimised by replaying it without one step at a time
    shrink_budget_s: float = 10.0
    contract: Contract = field(default_factory=Contract)
    retention_s: float | None = None
    scan_deadline_s: float | None = None

    def __post_init__(self) -> None:
        bad = [c for c in self.classes if c not in S.ANOMALY_CLASSES]
        if bad or not self.classes:
            raise UsageError(
                f"--classes {','.join(bad) or '(none)'}: valid: {', '.join(S.ANOMALY_CLASSES)}"
            )
        bad = [r for r in self.rules if r not in RULES]
        if bad or "discover" not in self.rules:
            raise UsageError(
                f"--rules {','.join(self.rules)}: must include discover; valid: {', '.join(RULES)}"
            )
        if self.max_examples is not None and self.max_examples < 1:
            raise UsageError(f"--max-examples {self.max_examples}: must be >= 1")
        if self.step_count is not None and not 1 <= self.step_count <= 50:
            raise UsageError(f"--steps {self.step_count}: must be 1..50")
        if not 1 <= self.workers <= 16 or not 1 <= self.tenants <= 8:
            raise UsageError("--workers must be 1..16 and --tenants 1..8")
        if not 0 < self.time_scale <= 1:
            raise UsageError(f"--time-scale {self.time_scale}: must be in (0, 1]")

    @property
    def is_reference(self) -> bool:
        return self.app.startswith("reference_impl.")

    def profile_name(self) -> str:
        name = self.profile or os.environ.get(PROFILE_ENV) or "ci"
        if name not in PROFILES:
            raise UsageError(
                f"hypothesis profile {name!r} (--profile or ${PROFILE_ENV}): "
                f"use one of {', '.join(PROFILES)}"
            )
        return name


@dataclass(frozen=True, slots=True)
class ExploreResult:
    """What an exploration found: ``found`` is empty when every example passed."""

    found: dict[str, int]
    replay: ReplayFile | None
    replay_path: Path | None
    command: str
    examples: int
    seconds: float
    out: Path
    reset_s: tuple[float, ...]  # clean-state cost of each example


@dataclass
class _Shared:
    """State that outlives one example (the machine object is rebuilt for each)."""

    cluster: Cluster
    loop: asyncio.Runner
    timing: ServiceTiming
    config: ExploreConfig
    directory: Path
    progress: Progress | None
    examples: int = 0
    failures: list[tuple[tuple[tuple[Step, tuple[int, ...]], ...], dict[str, int]]] = field(
        default_factory=list
    )
    infra: list[str] = field(default_factory=list)
    first_failure_at: float | None = None
    reset_s: list[float] = field(default_factory=list)


def _machine(shared: _Shared) -> type[RuleBasedStateMachine]:
    cfg = shared.config
    allowed = frozenset(cfg.rules)
    pins = st.integers(-1, cfg.workers - 1)
    workers = st.integers(0, cfg.workers - 1)
    tenants = st.integers(0, cfg.tenants - 1)
    scans = st.integers(0, 7)

    def enabled(name: str, needs_scan: bool = False) -> Callable[[Any], bool]:
        return lambda self: name in allowed and (not needs_scan or bool(self.ex.scans))

    class ScanMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            if shared.first_failure_at is not None and (
                time.perf_counter() - shared.first_failure_at > cfg.shrink_budget_s
            ):
                raise _ShrinkBudgetSpent
            shared.examples += 1
            shared.reset_s.append(reset_cluster(shared.cluster, path=cfg.contract.meta_path))
            self.ex = Example(
                shared.cluster,
                shared.loop,
                shared.directory,
                timing=shared.timing,
                tenants=cfg.tenants,
                label=f"example-{shared.examples}",
                contract=cfg.contract,
            )
            self.steps: list[tuple[Step, tuple[int, ...]]] = []
            if shared.progress is not None and shared.examples % 25 == 0:
                shared.progress(f"explore: {shared.examples} examples")

        def _do(self, step: Step) -> None:
            try:
                served = self.ex.run(step)
            except InfrastructureError as exc:
                shared.infra.append(f"{step.describe()}: {exc}")
                raise
            self.steps.append((step, served))

        def _scan(self, drawn: int) -> int:
            return drawn % len(self.ex.scans)

        # Every example starts a scan first: the other rules have something to act on
        # and shrinking does not spend its calls on examples that never start one.
        @initialize(tenant=tenants, pin=pins, filters=st.sampled_from(_ASSETS))
        def first_scan(self, tenant: int, pin: int, filters: str) -> None:
            self._do(Step(rule="discover", tenant=tenant, pin=pin, filters=filters))

        @rule(tenant=tenants, pin=pins, filters=st.sampled_from(_ASSETS))
        def discover(self, tenant: int, pin: int, filters: str) -> None:
            self._do(Step(rule="discover", tenant=tenant, pin=pin, filters=filters))

        @precondition(enabled("status", True))
        @rule(scan=scans, pin=pins)
        def status(self, scan: int, pin: int) -> None:
            self._do(Step(rule="status", scan=self._scan(scan), pin=pin))

        @precondition(enabled("results", True))
        @rule(scan=scans, pin=pins)
        def results(self, scan: int, pin: int) -> None:
            self._do(Step(rule="results", scan=self._scan(scan), pin=pin))

        @precondition(enabled("wait_complete", True))
        @rule(scan=scans, pin=pins)
        def wait_complete(self, scan: int, pin: int) -> None:
            self._do(Step(rule="wait_complete", scan=self._scan(scan), pin=pin))

        @precondition(enabled("probe", True))
        @rule(scan=scans, tenant=tenants, pin=pins)
        def probe(self, scan: int, tenant: int, pin: int) -> None:
            self._do(Step(rule="probe", scan=self._scan(scan), tenant=tenant, pin=pin))

        @precondition(enabled("wait"))
        @rule(seconds=st.sampled_from(_WAITS))
        def wait(self, seconds: float) -> None:
            self._do(Step(rule="wait", seconds=seconds))

        @precondition(enabled("delete_keys"))
        @rule(key_class=st.sampled_from(KEY_CLASSES))
        def delete_keys(self, key_class: str) -> None:
            self._do(Step(rule="delete_keys", key_class=key_class))

        @precondition(enabled("expire_keys"))
        @rule(key_class=st.sampled_from(KEY_CLASSES))
        def expire_keys(self, key_class: str) -> None:
            self._do(Step(rule="expire_keys", key_class=key_class))

        @precondition(enabled("kill"))
        @rule(worker=workers, seconds=st.sampled_from(_DOWNS))
        def kill(self, worker: int, seconds: float) -> None:
            self._do(Step(rule="kill", worker=worker, seconds=seconds))

        @precondition(enabled("restart"))
        @rule(worker=workers)
        def restart(self, worker: int) -> None:
            self._do(Step(rule="restart", worker=worker))

        @precondition(enabled("pause"))
        @rule(worker=workers, seconds=st.sampled_from(_PAUSES))
        def pause(self, worker: int, seconds: float) -> None:
            self._do(Step(rule="pause", worker=worker, seconds=seconds))

        @precondition(enabled("deploy"))
        @rule(rolling=st.booleans(), graceful=st.booleans())
        def deploy(self, rolling: bool, graceful: bool) -> None:
            self._do(Step(rule="deploy", rolling=rolling, graceful=graceful))

        @precondition(enabled("redis_stall"))
        @rule(seconds=st.sampled_from(_PAUSES))
        def redis_stall(self, seconds: float) -> None:
            self._do(Step(rule="redis_stall", seconds=seconds))

        def teardown(self) -> None:
            counts = self.ex.close_and_judge()
            found = {c: counts[c] for c in cfg.classes if counts.get(c, 0) > 0}
            # found is in cfg.classes order: the first one names the failure
            if not found:
                self.ex.writer.path.unlink(missing_ok=True)  # keep only failing histories
                return
            shared.failures.append((tuple(self.steps), found))
            if shared.first_failure_at is None:
                shared.first_failure_at = time.perf_counter()
            first = next(iter(found))
            raise _ANOMALY[first](f"{first}: {found} after {len(self.steps)} steps")

    return ScanMachine


_PINNABLE: Final = frozenset({"discover", "status", "results", "probe"})


def _pinned(steps: tuple[tuple[Step, tuple[int, ...]], ...]) -> tuple[Step, ...]:
    """A step sent through the router whose requests one worker served is pinned to it,
    so its replay does not depend on the router's rotation. A probe whose two requests
    went to two workers stays routed (each example aligns the rotation the same way)."""
    out = []
    for step, served in steps:
        if step.rule in _PINNABLE and step.pin < 0 and len(set(served)) == 1 and served[0] >= 0:
            step = replace(step, pin=served[0])
        out.append(step)
    return tuple(out)


def _run_steps(shared: _Shared, steps: tuple[Step, ...], label: str) -> dict[str, int]:
    shared.reset_s.append(reset_cluster(shared.cluster, path=shared.config.contract.meta_path))
    example = Example(
        shared.cluster,
        shared.loop,
        shared.directory,
        timing=shared.timing,
        tenants=shared.config.tenants,
        label=label,
        contract=shared.config.contract,
    )
    try:
        for step in steps:
            example.run(step)
    finally:
        counts = example.close_and_judge()
    return {c: counts[c] for c in shared.config.classes if counts.get(c, 0) > 0}


_MAX_MINIMISE_RUNS: Final = 60


def _minimise(
    shared: _Shared, steps: tuple[Step, ...], target: str, found: dict[str, int]
) -> tuple[tuple[Step, ...], dict[str, int]]:
    """Drop one step at a time (last first) while ``target`` still shows: every
    candidate is replayed from clean state, so what is kept reproduces."""
    runs = 0
    changed = True
    while changed and runs < _MAX_MINIMISE_RUNS:
        changed = False
        for i in reversed(range(1, len(steps))):  # step 0 starts the first scan
            if runs >= _MAX_MINIMISE_RUNS or i >= len(steps):
                continue
            candidate = steps[:i] + steps[i + 1 :]
            runs += 1
            got = _run_steps(shared, candidate, f"minimise-{runs}")
            if target in got:
                steps, found, changed = candidate, got, True
    return steps, found


def _start(cfg: ExploreConfig) -> Cluster:
    env = _reference_env(cfg.time_scale, cfg.flags) if cfg.is_reference else {}
    if not cfg.is_reference and (cfg.preset is not None or cfg.flags):
        raise UsageError(
            f"--preset/--flag apply to the reference service only, not --app {cfg.app}"
        )
    preset = (cfg.preset or "claimed-fix") if cfg.is_reference else None
    return Cluster.start(app=cfg.app, workers=cfg.workers, redis=cfg.redis, env=env, preset=preset)


def explore(cfg: ExploreConfig, *, progress: Progress | None = None) -> ExploreResult:
    """Run the state machine against one cluster; write the shrunk failure, if any."""
    profile = cfg.profile_name()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = (cfg.preset or "claimed-fix") if cfg.is_reference else "app"
    out = cfg.out or Path("scanproof-runs") / f"explore-{stamp}-{label}"
    out.mkdir(parents=True, exist_ok=True)
    options = dict(_COMMON) | PROFILES[profile]
    if profile != "ci":
        options["database"] = DirectoryBasedExampleDatabase(".hypothesis/scanproof")
    if cfg.max_examples is not None:
        options["max_examples"] = cfg.max_examples
    if cfg.step_count is not None:
        options["stateful_step_count"] = cfg.step_count
    begin = time.perf_counter()
    with _start(cfg) as cluster, asyncio.Runner() as loop:
        timing = read_timing(
            cluster, cfg.contract, retention_s=cfg.retention_s, scan_deadline_s=cfg.scan_deadline_s
        )
        shared = _Shared(cluster, loop, timing, cfg, out / "examples", progress)
        try:
            run_state_machine_as_test(_machine(shared), settings=settings(**options))
        except InfrastructureError:
            raise
        except (_ShrinkBudgetSpent, AssertionError, HypothesisException, ExceptionGroup) as exc:
            if shared.infra:
                raise InfrastructureError(shared.infra[-1]) from None
            if not shared.failures:  # hypothesis itself gave up (a health check, say)
                raise InfrastructureError(f"hypothesis: {type(exc).__name__}: {exc}") from exc
        if shared.failures:
            # The smallest failing example seen (of equal size, the latest).
            best, found = min(reversed(shared.failures), key=lambda f: len(f[0]))
            target = next(iter(found))
            steps = _pinned(best)
            if steps != tuple(s for s, _ in best):
                # pinning changed where requests go: keep it only if the failure stays
                got = _run_steps(shared, steps, "pinned")
                steps = steps if target in got else tuple(s for s, _ in best)
            steps, found = _minimise(shared, steps, target, found)
    seconds = time.perf_counter() - begin
    if not shared.failures:
        return ExploreResult(
            {}, None, None, "", shared.examples, seconds, out, tuple(shared.reset_s)
        )
    replay = ReplayFile(
        name=f"explore-{label}",
        description=f"shrunk by scanproof explore ({profile} profile) on {label}",
        workers=cfg.workers,
        tenants=cfg.tenants,
        found=tuple(found),
        steps=steps,
    )
    path = out / "shrunk.toml"
    path.write_text(dumps_replay(replay), encoding="utf-8")
    target = f"--preset {label}" if cfg.is_reference else f"--app {cfg.app}"
    command = f"scanproof replay {path} --repeat 10 {target}"
    return ExploreResult(
        found, replay, path, command, shared.examples, seconds, out, tuple(shared.reset_s)
    )
