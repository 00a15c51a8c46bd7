"""The exploration state machine: hypothesis draws schedules, the checkers judge them.

Rules (see :mod:`harness.explore.steps` for their fields): start a scan as some
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

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from harness.cluster import Cluster
from harness.errors import InfrastructureError, UsageError
from harness.explore.executor import ASSETS, ServiceTiming, read_timing
from harness.explore.lanes import Lane, start_lanes
from harness.explore.steps import RULES, ReplayFile, Step, contract_digest, dumps_replay
from harness.history import schema as S
from harness.targets import reference
from harness.targets.contract import KEY_CLASSES, Contract
from scenarios.stateful.search import Shared, ShrinkBudgetSpent, Ticker, search

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
_SHORT_WAITS: Final = (5.0, 15.0, 50.0)  # service seconds; see _waits for the long ones
_STAGGERS: Final = (50.0, 15.0, 0.0)  # alternate: the second worker's first poll, service s
_PAUSES: Final = (5.0, 10.0, 20.0)  # below sound's 30 s worker lease
_DOWNS: Final = (0.0, 10.0, 30.0)
PROGRESS_EVERY_S: Final = 4.0  # a progress line at least this often while exploring
Progress = Callable[[str], None]


def _waits(timing: ServiceTiming) -> tuple[float, ...]:
    """What ``wait`` draws, in service seconds: short waits, a typical scan (1.2x),
    and past the stated retention of a finished scan (1.2x) - on the service's own clock.

    >>> _waits(ServiceTiming(time_scale=0.01, retention_s=5.4, scan_deadline_s=3.0,
    ...                      stated_retention_s=6.0))
    (5.0, 15.0, 50.0, 198.0, 720.0)
    """
    scan = timing.service_s(1.2 * timing.scan_s)
    expire = timing.service_s(1.2 * (timing.stated_retention_s or timing.retention_s))
    return tuple(sorted({*_SHORT_WAITS, scan, expire}))


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

    preset: str | None = None  # reference service only; default reference.DEFAULT_PRESET
    flags: Mapping[str, Any] = field(default_factory=dict)  # reference service overrides
    app: str = reference.DEFAULT_APP
    workers: int = 4
    tenants: int = 2
    redis: str = "auto"  # server when redis-server is on PATH: sound on fakeredis is slow
    # real seconds per service second. The reference runs on it (default 0.003); for
    # another app it states the clock; None: the contract's, the meta's, else calibrated
    time_scale: float | None = None
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
    contract_file: str = ""  # where the contract was read from ("" built in): recorded
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    budget_s: float | None = None  # real seconds for the whole exploration, shrinking included
    progress_every_s: float = PROGRESS_EVERY_S
    # clusters searching at once (an example mostly waits on the service); every
    # minimisation candidate runs on each and is kept only when all show the failure
    lanes: int = 2
    seeds: bool = True  # run harness.explore.seeds' schedules before the random search

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
        if self.time_scale is not None and not 0 < self.time_scale <= 1:
            raise UsageError(f"--time-scale {self.time_scale}: must be in (0, 1]")
        if self.budget_s is not None and not self.budget_s > 0:
            raise UsageError(f"--budget {self.budget_s}: must be > 0 seconds")
        if not 1 <= self.lanes <= 4:
            raise UsageError(f"--lanes {self.lanes}: must be 1..4 (each lane is one cluster)")

    @property
    def is_reference(self) -> bool:
        return reference.is_reference(self.app)

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
    timing: ServiceTiming | None = None  # the time base the examples ran on
    budget_spent: bool = False  # the search ended at --budget
    seeds: int = 0  # seed schedules run before the examples (harness.explore.seeds)

    def summary(self) -> str:
        """``nothing found in 100 examples / 93.2 s`` or what was found."""
        ran = (
            f"{self.seeds} seeds and {self.examples} examples"
            if self.seeds
            else (f"{self.examples} examples")
        )
        if not self.found:
            cut = " (budget spent)" if self.budget_spent else ""
            return f"nothing found in {ran} / {self.seconds:.1f} s{cut}"
        steps = len(self.replay.steps) if self.replay else 0
        found = ", ".join(f"{k} {v}" for k, v in self.found.items())
        return f"found {found} in {steps} steps ({ran} / {self.seconds:.1f} s)"


def _machine(shared: Shared, lane: Lane) -> type[RuleBasedStateMachine]:
    cfg = shared.config
    allowed = frozenset(cfg.rules)
    pins = st.integers(-1, cfg.workers - 1)
    workers = st.integers(0, cfg.workers - 1)
    tenants = st.integers(0, cfg.tenants - 1)
    scans = st.integers(0, 7)
    waits = _waits(shared.timing)

    def enabled(name: str, needs_scan: bool = False) -> Callable[[Any], bool]:
        return lambda self: name in allowed and (not needs_scan or bool(self.ex.scans))

    class ScanMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            if shared.first_failure_at is not None and (
                time.perf_counter() - shared.first_failure_at > cfg.shrink_budget_s
            ):
                raise ShrinkBudgetSpent
            shared.check(lane)
            self.ex = shared.example(lane)
            self.steps: list[tuple[Step, tuple[int, ...]]] = []

        def _do(self, step: Step) -> None:
            shared.check(lane)
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
        @initialize(tenant=tenants, pin=pins, filters=st.sampled_from(ASSETS))
        def first_scan(self, tenant: int, pin: int, filters: str) -> None:
            self._do(Step(rule="discover", tenant=tenant, pin=pin, filters=filters))

        @rule(tenant=tenants, pin=pins, filters=st.sampled_from(ASSETS))
        def discover(self, tenant: int, pin: int, filters: str) -> None:
            self._do(Step(rule="discover", tenant=tenant, pin=pin, filters=filters))

        # Two scans of one tenant: same or other filters, overlapping or back to back.
        @precondition(enabled("rediscover", True))
        @rule(scan=scans, pin=pins, same=st.booleans(), after=st.booleans())
        def rediscover(self, scan: int, pin: int, same: bool, after: bool) -> None:
            step = Step(rule="rediscover", scan=self._scan(scan), pin=pin, same=same, after=after)
            self._do(step)

        # Polls pinned to two chosen workers in turn until the scan is finished.
        @precondition(enabled("alternate", True))
        @rule(scan=scans, pin=workers, worker=workers, stagger=st.sampled_from(_STAGGERS))
        def alternate(self, scan: int, pin: int, worker: int, stagger: float) -> None:
            step = Step(
                rule="alternate", scan=self._scan(scan), pin=pin, worker=worker, seconds=stagger
            )
            self._do(step)

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
        @rule(seconds=st.sampled_from(waits))
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
            found = shared.found(self.ex.close_and_judge())
            if not found:
                self.ex.writer.path.unlink(missing_ok=True)  # keep only failing histories
                return
            # found is in cfg.classes order: the first one names the failure.
            first = next(iter(found))
            # Only the steps up to the one that showed it: later ones cannot have caused it.
            until = self.ex.steps_until(first) or len(self.steps)
            shared.record(lane, tuple(self.steps), until, found)
            raise _ANOMALY[first](f"{first}: {found} after {len(self.steps)} steps")

    return ScanMachine


def _service_env(cfg: ExploreConfig) -> dict[str, str]:
    """The workers' environment; UsageError for a bad preset or flag."""
    return reference.target_env(
        cfg.app,
        preset=cfg.preset,
        flags=cfg.flags,
        time_scale=(cfg.time_scale or DEFAULT_TIME_SCALE) if cfg.is_reference else None,
    )


def explore(cfg: ExploreConfig, *, progress: Progress | None = None) -> ExploreResult:
    """Run the state machine against one cluster; write the shrunk failure, if any.

    ``progress`` gets a line at least every ``cfg.progress_every_s`` seconds (examples
    run, the best candidate so far, elapsed and budget), and one per phase change."""
    profile = cfg.profile_name()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = _service_env(cfg)  # before the output directory exists: bad input makes nothing
    label = reference.effective_preset(cfg.app, cfg.preset) or "app"
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
    say = progress or (lambda line: None)
    ticking: list[Shared] = []
    stop = threading.Event()  # set on Ctrl-C: the lanes stop, and are not waited for

    def status() -> str:
        if ticking:
            return ticking[0].status()
        return (
            f"explore: starting and calibrating the time base, {time.perf_counter() - begin:.0f} s"
        )

    with contextlib.ExitStack() as stack, Ticker(status, say, cfg.progress_every_s):
        lanes = start_lanes(
            stack,
            cfg.lanes,
            lambda: Cluster.start(app=cfg.app, workers=cfg.workers, redis=cfg.redis, env=env),
            stop,
        )
        timing = read_timing(
            lanes[0].cluster,
            cfg.contract,
            retention_s=cfg.retention_s,
            scan_deadline_s=cfg.scan_deadline_s,
            time_scale=None if cfg.is_reference else cfg.time_scale,
            calibrate_dir=out / "calibration",
            progress=say,
        )
        shared = Shared(lanes, timing, cfg, out / "examples", progress, began=begin, stop=stop)
        ticking.append(shared)
        steps, found = search(shared, options, say, lambda lane: _machine(shared, lane))
    seconds = time.perf_counter() - begin
    result = ExploreResult(
        found={},
        replay=None,
        replay_path=None,
        command="",
        examples=shared.examples,
        seeds=shared.seeds_run,
        seconds=seconds,
        out=out,
        reset_s=tuple(shared.reset_s),
        timing=timing,
        budget_spent=shared.budget_spent,
    )
    if not found:
        return result
    replay = ReplayFile(
        name=f"explore-{label}",
        description=f"shrunk by scanproof explore ({profile} profile) on {label}",
        workers=cfg.workers,
        tenants=cfg.tenants,
        found=tuple(found),
        steps=steps,
        app=cfg.app,
        preset=reference.effective_preset(cfg.app, cfg.preset) or "",
        contract=cfg.contract_file,
        contract_digest=contract_digest(cfg.contract),
        time_scale=timing.time_scale,
        time_base=timing.source,
        scan_deadline_s=timing.scan_deadline_s,
        retention_s=timing.stated_retention_s,
    )
    path = out / "shrunk.toml"
    path.write_text(dumps_replay(replay), encoding="utf-8")
    target = f"--preset {label}" if cfg.is_reference else f"--app {cfg.app}"
    if cfg.contract_file:
        target += f" --contract {cfg.contract_file}"
    command = f"scanproof replay {path} --repeat 10 {target}"
    return replace(result, found=found, replay=replay, replay_path=path, command=command)
