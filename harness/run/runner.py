"""A chaos run end to end: cluster up, plan, drive, inject, record, judge, report.

>>> from harness.run.runner import RunOptions, run_chaos  # doctest: +SKIP
>>> options = RunOptions(scenario=get_scenario("mixed"), preset="claimed-fix")  # doctest: +SKIP
>>> result = run_chaos(options)  # doctest: +SKIP
>>> result.verdict.verdict, result.run_dir  # doctest: +SKIP
('fail', PosixPath('scanproof-runs/20261129-101500-mixed-claimed-fix-s0'))

Nothing is lost: ``run.json`` is written before anything starts and every op is
flushed as it happens, so a run stopped by Ctrl-C or a crash leaves a history
that ``scanproof check`` can still judge, and the cluster is always torn down.

Where the wall time went is ``run.json``'s ``phases`` (a
:class:`~harness.history.record.PhaseClock`): written when the run ends, and again
after judging. The command line passes its own clock, started when its process
started, and adds ``rendering`` once the report files are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._toml import positive_number
from harness.cluster import Cluster
from harness.cluster.deployment import Deployment
from harness.errors import InfrastructureError, ScanproofError, UsageError
from harness.faults.nemesis import check_schedule, check_supported
from harness.history.record import (
    RUN_JSON,
    CheckSettings,
    PhaseClock,
    RunConfig,
    RunStatus,
    new_record,
    now_iso,
    package_version,
    read_record,
    write_record,
)
from harness.history.tables import FaultRecord
from harness.judging.run_dir import judge_run_dir
from harness.judging.thresholds import Limit
from harness.judging.verdict import Verdict
from harness.judging.window import (
    JudgingWindow,
    judging_window,
    missing_retention,
    stated_time_scale,
)
from harness.run import _targets
from harness.run._play import execute_locust, execute_scripted
from harness.run.calibrate import (
    CATALOGUE_SCAN_S,
    Calibration,
    CalibrationError,
    CalibrationSettings,
    calibrate,
)
from harness.run.client import DEFAULT_TIMEOUT_S, read_meta
from harness.run.driver import Timing
from harness.run.plan import DEFAULT_SCAN_S, expected_classes, make_plan
from harness.run.scenario import LINK_FAULTS, QUEUE_FAULTS, Scenario, check_fault_needs
from harness.targets import reference
from harness.targets.contract import Contract

DEFAULT_APP = reference.DEFAULT_APP
DEFAULT_PRESET = reference.DEFAULT_PRESET
Progress = Callable[[str], None]


_WORKER_LOGS = "workers"  # the run directory's folder of worker, zygote and router logs


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """Everything a chaos run needs; the defaults are ``scanproof run``'s."""

    scenario: Scenario
    app: str = DEFAULT_APP
    preset: str | None = None  # reference service only; default reference.DEFAULT_PRESET
    flags: Mapping[str, Any] = field(default_factory=dict)  # reference service overrides
    seed: int = 0
    workers: int | None = None  # default: the scenario's
    router: str = "round-robin"
    redis: str = "embedded"
    duration_s: float | None = None  # real seconds of the active phase
    tenants: int | None = None
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    time_scale: float | None = None  # real s per service s; any app (see harness.judging.window)
    contract: Contract = field(default_factory=Contract)
    contract_file: Path | None = None  # where the contract was read from; None: built in
    out: Path | None = None
    thresholds: Mapping[str, int | Limit] = field(default_factory=dict)
    allow_destructive: bool = False
    allow_remote_faults: bool = False
    driver: str = "scripted"  # scripted | locust
    users: int = 10  # locust only: concurrent users (each one tenant)
    spawn_rate: float = 10.0  # locust only: users started per second
    calibrate_timeout_s: float | None = None  # default CalibrationSettings().timeout_s
    calibrate_scans: int | None = None  # default CalibrationSettings().scans
    cmd: str | None = None  # workers run this command instead of the ASGI ``app``
    ready_path: str | None = None  # --cmd: a worker is ready when this path answers
    targets: tuple[str, ...] = ()  # a running deployment's URLs: nothing is started
    max_rps: float | None = None  # the client's bound on requests per second
    # None: off with one --target (its balancer balances connections), on otherwise
    keep_alive: bool | None = None
    job_workers: str | None = None  # a job-queue service's job workers run this command
    job_worker_count: int = 1
    job_ready_log: str | None = None  # a job worker is ready when its log matches this
    # the run's key namespace: SCANPROOF_RUN_ID in every worker's environment and {run}
    # in the contract's key patterns (None: a new one per run)
    run_id: str | None = None

    @property
    def is_reference(self) -> bool:
        """True when scanproof starts the reference service as an ASGI app."""
        return self.cmd is None and not self.targets and reference.is_reference(self.app)


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: Path
    verdict: Verdict
    status: str  # complete | interrupted | crashed
    calibration_error: str = ""  # calibration failed: the scenario never ran (exit 3)


def default_run_dir(options: RunOptions) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    preset = options.preset or reference.effective_preset(options.app, None) or "app"
    if options.targets:
        preset = "target"
    return Path("scanproof-runs") / f"{stamp}-{options.scenario.name}-{preset}-s{options.seed}"


def _service_env(options: RunOptions) -> dict[str, str]:
    """The workers' environment; UsageError for a bad preset, flag or time scale."""
    return reference.target_env(
        options.app,
        preset=options.preset,
        flags=options.flags,
        seed=options.seed,
        # the reference service runs on the clock it is given: the user's, else the contract's
        time_scale=options.time_scale or contract_time_scale(options.contract),
    )


def contract_time_scale(contract: Contract) -> float | None:
    """The time scale a contract states: its ``time_scale``, else its ``scan_s`` (real
    seconds of a typical scan) over :data:`~harness.run.calibrate.CATALOGUE_SCAN_S`."""
    scale = getattr(contract, "time_scale", None)
    if isinstance(scale, int | float) and scale > 0:
        return float(scale)
    scan_s = getattr(contract, "scan_s", None)
    if isinstance(scan_s, int | float) and scan_s > 0:
        return float(scan_s) / CATALOGUE_SCAN_S
    return None


def _window(
    options: RunOptions,
    meta: Mapping[str, Any],
    calibration: Mapping[str, Any] | None = None,
    *,
    poll_interval: float | None = None,
) -> JudgingWindow:
    """The run's judging window (see harness.judging.window for the precedence)."""
    return judging_window(
        meta=meta,
        poll_interval_s=poll_interval or options.scenario.poll_interval,
        retention_s=options.retention_s,
        scan_deadline_s=options.scan_deadline_s,
        time_scale=options.time_scale,
        contract_retention_s=options.contract.retention_s,
        contract_deadline_s=options.contract.scan_deadline_s,
        contract_time_scale=contract_time_scale(options.contract),
        calibrated=calibration,
    )


def calibration_settings(options: RunOptions) -> CalibrationSettings:
    """The calibration of a run of ``options`` (its timeout and number of scans)."""
    default = CalibrationSettings()
    return dataclasses.replace(
        default,
        timeout_s=options.calibrate_timeout_s or default.timeout_s,
        scans=options.calibrate_scans or default.scans,
        # calibration's requests count against --max-rps like the run's own
        max_rps=_targets.max_rps(options),
        keep_alive=_targets.keep_alive(options),
    )


def _time_base(
    options: RunOptions,
    base_url: str,
    meta: Mapping[str, Any],
    run_dir: Path,
    progress: Progress | None,
    clock: PhaseClock | None = None,
) -> Calibration | None:
    """Calibrate when neither the user, the contract nor the app's meta states a time
    scale (None: one of them does); CalibrationError (exit 3) when it cannot measure.
    ``clock`` enters the ``calibration`` phase when calibration starts."""
    # Retention cannot be measured: a missing one is refused before calibration costs time.
    missing_retention(
        meta=meta,
        retention_s=options.retention_s,
        contract_retention_s=options.contract.retention_s,
    )
    stated = stated_time_scale(
        meta=meta,
        time_scale=options.time_scale,
        contract_time_scale=contract_time_scale(options.contract),
    )
    if stated is not None:
        return None
    settings = calibration_settings(options)
    if clock is not None:
        clock.enter("calibration")
    if progress is not None:
        progress(
            f"calibrating: no time scale stated by --time-scale, the contract or the app's "
            f"meta; measuring {settings.scans} fault-free scans (at most {settings.timeout_s:g} s)"
        )
    measured = calibrate(base_url, options.contract, run_dir, settings)
    if progress is not None:
        progress(
            f"calibrated: {measured.n} scans, median {measured.median_s:.3g} s, p95 "
            f"{measured.p95_s:.3g} s -> time scale {measured.time_scale:.4g}, scan deadline "
            f"{measured.scan_deadline_s:.3g} s"
        )
    return measured


def _failed_calibration_check(
    options: RunOptions, meta: Mapping[str, Any], exc: CalibrationError
) -> CheckSettings:
    """How the calibration shard of a run whose calibration failed is judged: the scans
    were given the calibration's timeout unless a deadline was stated."""
    settings = calibration_settings(options)
    window = _window(options, meta, {"scan_deadline_s": settings.timeout_s})
    finished = exc.calibration is not None and exc.calibration.n > 0
    return _check_settings(
        window,
        final_heal_ns=None,
        expected=("status_not_found", "results_404") if finished else ("status_not_found",),
    )


def _expected_scan_s(meta: Mapping[str, Any], scale: float) -> float:
    expected = meta.get("expected_scan_s")
    if isinstance(expected, int | float) and not isinstance(expected, bool) and expected > 0:
        return float(expected) / scale
    return DEFAULT_SCAN_S


def _poll_interval(scenario: Scenario, calibration: Calibration | None) -> float:
    """The scenario's poll interval (service seconds), raised so that the run never polls
    faster than calibration saw the service answer."""
    if calibration is None or not calibration.time_scale > 0:
        return scenario.poll_interval
    return max(scenario.poll_interval, calibration.poll_floor_s / calibration.time_scale)


def _scenario_for(
    options: RunOptions, scale: float, poll_interval: float | None = None
) -> Scenario:
    scenario = options.scenario
    changes: dict[str, Any] = {}
    if poll_interval is not None and poll_interval != scenario.poll_interval:
        changes["poll_interval"] = poll_interval
    if options.duration_s is not None:
        if options.duration_s <= 0:
            raise UsageError(f"--duration {options.duration_s}: must be > 0 seconds")
        changes["duration"] = options.duration_s / scale
    if options.tenants is not None:
        changes["tenants"] = options.tenants
    if options.workers is not None:
        changes["workers"] = options.workers
    return dataclasses.replace(scenario, **changes) if changes else scenario


def _driver_config(options: RunOptions) -> dict[str, Any]:
    _targets.check_load_options(options)
    load: dict[str, Any] = {}
    if options.max_rps is not None or options.targets:
        load = {"max_rps": _targets.max_rps(options), "keep_alive": _targets.keep_alive(options)}
    if options.driver == "scripted":
        return {"name": "scripted", **load}
    if options.driver != "locust":
        raise UsageError(f"--driver {options.driver!r}: valid: scripted, locust")
    if options.users < 1:
        raise UsageError(f"--users {options.users}: must be >= 1")
    if not options.spawn_rate > 0:
        raise UsageError(f"--spawn-rate {options.spawn_rate}: must be > 0 users per second")
    return {
        "name": "locust",
        "users": options.users,
        "spawn_rate": options.spawn_rate,
        "locust": package_version("locust"),
        **load,
    }


def check_out_dir(path: Path, *, holds: str = RUN_JSON, what: str = "run") -> None:
    """Refuse (UsageError, one line) an output directory that cannot become a fresh one:
    a file, a path under a file, a place we cannot create or write, a directory that
    already holds ``what`` (its file ``holds``), or one that holds anything else (old
    history shards would mix with the new run's). Leaves nothing behind."""
    flag = f"--out {path}"
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            where = "it" if place == path else str(place)
            raise UsageError(f"{flag}: {where} is a file, not a directory; pass another --out")
    if (path / holds).exists():
        article = "an" if what[0] in "aeiou" else "a"
        raise UsageError(f"{flag} already holds {article} {what}; pass another --out or remove it")
    if path.is_dir():
        try:
            entries = sorted(p.name for p in path.iterdir())
        except OSError as exc:
            raise UsageError(f"{flag}: cannot list it ({exc.strerror})") from exc
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise UsageError(
                f"{flag} is not empty ({shown}) but holds no {what}; "
                "pass a new or empty directory (two runs' files must never mix)"
            )
    # Can we make it (or write in it)? Try, then remove exactly what the try made.
    probe = path / f".scanproof-probe-{os.getpid()}"
    made = [p for p in (probe, path, *path.parents) if not p.exists()]
    try:
        made[0].mkdir(parents=True)
    except OSError as exc:
        raise UsageError(
            f"{flag}: cannot create it ({exc.strerror}); pass a directory you can write"
        ) from exc
    finally:
        for place in made:
            with contextlib.suppress(OSError):
                place.rmdir()


@contextlib.contextmanager
def _entering(clock: PhaseClock, phase: str) -> Iterator[None]:
    """Enter ``phase`` on leaving the block, however it is left."""
    try:
        yield
    finally:
        clock.enter(phase)


def run_chaos(
    options: RunOptions, *, progress: Progress | None = None, clock: PhaseClock | None = None
) -> RunResult:
    """Run one scenario against a fresh cluster and judge it; see the module docstring.
    ``clock`` times the phases (``run.json`` ``phases``); default: one started now."""
    clock = clock or PhaseClock()
    driver = _driver_config(options)  # bad driver options: refused before anything exists
    for flag, value, unit in (
        ("--duration", options.duration_s, "seconds"),
        ("--retention-s", options.retention_s, "seconds"),
        ("--scan-deadline-s", options.scan_deadline_s, "seconds"),
        ("--time-scale", options.time_scale, "real seconds per service second"),
        ("--spawn-rate", options.spawn_rate, "users per second"),
    ):
        if value is not None:
            positive_number(flag, value, unit=unit)  # nan, inf, 0 and negatives: exit 2
    for flag, count in (("--workers", options.workers), ("--tenants", options.tenants)):
        if count is not None and count < 1:
            raise UsageError(f"{flag} {count}: must be a whole number >= 1")
    if options.run_id is None:
        options = dataclasses.replace(options, run_id=new_run_id())
    _check_job_options(options)  # job workers and queue faults: one line, nothing started
    if options.targets:  # --cmd, a preset, a bad URL, a fault with no hook: nothing sent
        _targets.check_target_options(options)
    run_dir = options.out or default_run_dir(options)
    check_out_dir(run_dir)  # a file, an unwritable place, another run's leftovers: exit 2
    if not options.targets:
        check_schedule(  # the external-Redis opt-ins, against the whole schedule, up front
            options.scenario.faults,
            options.redis,
            allow_destructive=options.allow_destructive,
            allow_remote_faults=options.allow_remote_faults,
        )
    # a bad preset or flag: refused before the directory exists
    env = {} if options.targets else {**_service_env(options), RUN_ID_ENV: str(options.run_id)}
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    scenario = options.scenario
    config = RunConfig(
        app="" if options.cmd or options.targets else options.app,
        command=options.cmd or "",
        targets=options.targets,
        job_workers={
            "command": options.job_workers,
            "count": options.job_worker_count,
            "ready_log": options.job_ready_log,
        }
        if options.job_workers
        else {},
        run_id=options.run_id or "",
        preset=None if options.targets else reference.effective_preset(options.app, options.preset),
        flag_overrides=dict(options.flags),
        scenario=dataclasses.asdict(scenario),
        seed=options.seed,
        workers=options.workers or scenario.workers,
        router=options.router,
        redis={"spec": _redis_spec(options)},
        contract=dataclasses.asdict(options.contract),
        contract_file=str(options.contract_file or ""),
        driver=driver,
    )
    # The cluster's directory (sockets, logs) is made and recorded before anything starts,
    # so a run SIGKILLed while its cluster starts still names it (check removes it).
    cluster_dir = Path(tempfile.mkdtemp(prefix="scanproof-cluster-"))
    record = new_record(config=config).but(
        temp_dirs=(str(cluster_dir),),
        thresholds=dict(options.thresholds),
        retry_policies={
            "client": f"no retries; {DEFAULT_TIMEOUT_S} s timeout per request",
            "nemesis_redis": "no retries; 2 s socket timeout (harness.cluster.redis.make_client)",
        },
    )
    write_record(run_dir, record)
    status: RunStatus = "crashed"
    calibration_error = ""
    try:
        clock.enter("cluster_start")
        # the cluster stops after the clock enters teardown (the last context exits first)
        with _start(options, env, cluster_dir, run_dir) as cluster, _entering(clock, "teardown"):
            if options.targets and progress is not None:
                progress(_targets.announcement(options, duration_s=options.duration_s))
            meta = read_meta(cluster.router_url, options.contract.meta_path)
            if isinstance(cluster, Deployment):
                mode = _targets.worker_attribution(
                    cluster.router_url,
                    options.contract.meta_path,
                    options.contract.worker_header,
                    routed=cluster.router is not None,
                )
                config = dataclasses.replace(config, worker_attribution=mode)
                if progress is not None:
                    progress(f"worker attribution: {_targets.attribution_note(mode)}")
            began = time.monotonic()
            try:
                calibration = _time_base(
                    options, cluster.router_url, meta, run_dir, progress, clock
                )
            except CalibrationError as exc:
                record = record.but(
                    meta=meta,
                    calibration=exc.calibration.to_json()
                    if exc.calibration
                    else {"error": str(exc)},
                    check=_failed_calibration_check(options, meta, exc),
                    t0_ns=int(began * 1e9),
                )
                raise
            poll_interval = _poll_interval(options.scenario, calibration)
            window = _window(
                options,
                meta,
                calibration.stated() if calibration else None,
                poll_interval=poll_interval,
            )
            scale = window.time_scale.value
            scenario = _scenario_for(options, scale, poll_interval)
            plan = make_plan(scenario, seed=options.seed, scan_s=_expected_scan_s(meta, scale))
            if any(s.fail for s in plan.scans) and not options.contract.fail_body:
                raise UsageError(
                    f"scenario {scenario.name} asks scans to fail (failing = "
                    f"{scenario.failing}) but the contract has no fail_body; add one or "
                    "set failing = 0"
                )
            check_supported(plan.faults, cluster.redis, options.redis)
            poll_source = {
                "value": scenario.poll_interval * scale,
                "source": "scenario"
                if poll_interval == options.scenario.poll_interval
                else "calibration",
            }
            expected = expected_classes(
                plan,
                options.contract,
                scan_deadline_s=window.scan_deadline_s / scale,
                driver=options.driver,
            )
            t0 = time.monotonic()
            clock.enter("active")
            record = record.but(
                config=dataclasses.replace(
                    config,
                    scenario=dataclasses.asdict(scenario),
                    redis={
                        "spec": _redis_spec(options),
                        "backend": cluster.redis.name,
                        "url": cluster.redis_url,
                    },
                    time_scale=scale,
                ),
                flags=meta.get("flags", {}),
                retry_policies={
                    **record.retry_policies,
                    "service": meta.get("retry_policy", "unknown"),
                },
                meta=meta,
                check=_check_settings(
                    window, final_heal_ns=None, expected=expected, poll=poll_source
                ),
                calibration=calibration.to_json() if calibration else None,
                # the report's clock starts at the first op: calibration's, when it ran
                t0_ns=int((began if calibration else t0) * 1e9),
            )
            timing = Timing(
                t0=t0,
                scale=scale,
                retention_s=window.retention_s,
                scan_deadline_s=window.scan_deadline_s,
                end=t0 + plan.end_s * scale,
            )
            write_record(run_dir, record)
            nemesis_records: list[FaultRecord] = []
            execute = execute_scripted if options.driver == "scripted" else execute_locust
            heal_ns, errors = asyncio.run(
                execute(
                    cluster,
                    plan,
                    timing,
                    _played(options, window),
                    run_dir,
                    progress,
                    nemesis_records,
                )
            )
            if heal_ns is not None:  # the final heal ends the active phase
                clock.enter("recovery", at=heal_ns / 1e9)
            record = record.but(
                check=_check_settings(
                    window, final_heal_ns=heal_ns, expected=expected, poll=poll_source
                ),
                infrastructure_errors=tuple(errors),
                warnings=tuple(
                    f"fault {r.fault_id} {r.fault} on {r.target} did not land: {r.evidence}"
                    for r in nemesis_records
                    if not r.landed
                ),
                restarts=tuple(dataclasses.asdict(r) for r in cluster.restarts),
            )
        status = "complete"
    except CalibrationError as exc:
        # The run ended by its own decision, nothing lost: judged from the calibration
        # shard, unknown with the evidence (exit 3; see RunResult.calibration_error).
        status = "complete"
        calibration_error = str(exc)
        record = record.but(infrastructure_errors=(calibration_error,))
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except UsageError:
        status = "refused"  # bad input: nothing ran
        raise
    except ScanproofError:
        status = "crashed"
        raise
    except Exception as exc:
        record = record.but(crash=f"{type(exc).__name__}: {exc}")
        raise InfrastructureError(f"the run crashed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(cluster_dir, ignore_errors=True)
        record = record.but(status=status, ended_at=now_iso(), phases=clock.to_json())
        if (
            record.status == "refused"
            and created
            and {p.name for p in run_dir.iterdir()} <= {RUN_JSON, _WORKER_LOGS}
        ):
            # bad input, nothing ran (the workers' logs of a cluster started only to be
            # refused say nothing about the app): leave no run directory behind
            shutil.rmtree(run_dir)
        else:
            write_record(run_dir, record)
        if record.status not in ("complete", "refused") and progress is not None:
            progress(f"run {status}; what was recorded is in {run_dir} (scanproof check {run_dir})")
    clock.enter("judging")
    verdict = judge_run_dir(run_dir)
    record_phases(run_dir, clock)
    return RunResult(
        run_dir=run_dir, verdict=verdict, status=status, calibration_error=calibration_error
    )


def record_phases(run_dir: Path, clock: PhaseClock) -> dict[str, float]:
    """Rewrite ``run_dir``'s run.json with ``clock``'s phases so far (the phase in
    progress counted up to now) and return them. Timing never changes a run's outcome:
    a run.json that cannot be read or written is left as it is."""
    phases = clock.to_json()
    with contextlib.suppress(ScanproofError, OSError):
        write_record(run_dir, read_record(run_dir).but(phases=phases))
    return phases


RUN_ID_ENV = "SCANPROOF_RUN_ID"


def new_run_id() -> str:
    """A fresh run id: ``sp`` and 8 hex digits (a Redis key namespace, safe in any key).

    >>> len(new_run_id()), new_run_id()[:2]
    (10, 'sp')
    """
    return "sp" + secrets.token_hex(4)


def _check_job_options(options: RunOptions) -> None:
    """Refuse job worker options and faults the run cannot use (UsageError, one line)."""
    from harness.cluster.jobs import check_job_options

    if options.job_workers is not None:
        if options.targets:
            raise UsageError(
                "--job-workers and --target: --job-workers starts job workers, --target "
                "tests a running deployment; pass one"
            )
        check_job_options(options.job_workers, options.job_worker_count, options.job_ready_log)
    elif options.job_ready_log is not None or options.job_worker_count != 1:
        flag = "--job-ready-log" if options.job_ready_log is not None else "--job-worker-count"
        raise UsageError(f"{flag}: applies to job workers only; pass --job-workers CMD too")
    queue = [f.fault for f in options.scenario.faults if f.fault in QUEUE_FAULTS]
    if options.targets and queue and not options.redis.startswith(("redis://", "rediss://")):
        raise UsageError(
            f"fault {queue[0]!r} needs the deployment's Redis: pass --redis "
            "redis://HOST:PORT/DB and --allow-destructive"
        )
    check_fault_needs(
        options.scenario.faults,
        job_workers=options.job_worker_count if options.job_workers is not None else 0,
        keys=options.contract.keys,
        target=bool(options.targets),
        shared_redis=options.redis.startswith(("redis://", "rediss://")),
    )


def _redis_spec(options: RunOptions) -> str:
    """The --redis recorded: a --target run's own Redis URL, or "none" when not given."""
    if options.targets:
        return _targets.redis_spec(options) or "none"
    return options.redis


def _start(
    options: RunOptions, env: Mapping[str, str], cluster_dir: Path, run_dir: Path
) -> Cluster | Deployment:
    """The system under test: the running deployment (``--target``), else a new cluster."""
    workers = options.workers or options.scenario.workers
    if options.targets:
        return Deployment.start(
            options.targets,
            redis=_targets.redis_spec(options),
            hooks=options.contract.hooks,
            workers=workers,
            allow_destructive=options.allow_destructive,
            allow_remote_faults=options.allow_remote_faults,
            workdir=cluster_dir,
            log_dir=run_dir / _WORKER_LOGS,
        )
    return Cluster.start(
        app=options.app,
        cmd=options.cmd,
        ready_path=options.ready_path,
        workers=workers,
        router=options.router,
        redis=options.redis,
        env=env,
        allow_destructive=options.allow_destructive,
        allow_remote_faults=options.allow_remote_faults,
        workdir=cluster_dir,
        log_dir=run_dir / _WORKER_LOGS,
        # link faults act on each worker's own proxy to Redis; without them, none
        links=any(f.fault in LINK_FAULTS for f in options.scenario.faults),
        job_workers=options.job_workers,
        job_worker_count=options.job_worker_count,
        job_ready_log=options.job_ready_log,
    )


def _played(options: RunOptions, window: JudgingWindow) -> RunOptions:
    """The options the driver plays with: a time scale or deadline the runner resolved
    from the contract or calibration is passed on like the user's own (the locust
    process resolves its timing from them)."""
    changes: dict[str, Any] = {}
    if window.time_scale.source in ("contract", "calibration"):
        changes["time_scale"] = window.time_scale.value
    deadline = window.stated["scan_deadline_s"]
    if deadline.source == "calibration":
        changes["scan_deadline_s"] = deadline.value
    return dataclasses.replace(options, **changes) if changes else options


def _check_settings(
    window: JudgingWindow,
    *,
    final_heal_ns: int | None,
    expected: tuple[str, ...],
    poll: Mapping[str, Any] | None = None,
) -> CheckSettings:
    doc = window.to_json()
    sources = dict(doc["sources"])
    if poll is not None:
        sources["poll_interval_s"] = dict(poll)  # real seconds between a scan's polls
    return CheckSettings(
        retention_s=window.retention_s,
        scan_deadline_s=window.scan_deadline_s,
        final_heal_ns=final_heal_ns,
        sources=sources,
        expected_classes=expected,
    )


def print_progress(line: str) -> None:
    """The default progress sink: one line per update on stderr."""
    print(line, file=sys.stderr, flush=True)
