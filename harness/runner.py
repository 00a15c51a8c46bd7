"""A chaos run end to end: cluster up, plan, drive, inject, record, judge, report.

>>> from harness.runner import RunOptions, run_chaos  # doctest: +SKIP
>>> result = run_chaos(RunOptions(scenario=get_scenario("mixed"), preset="claimed-fix"))
>>> result.verdict.verdict, result.run_dir  # doctest: +SKIP
('fail', PosixPath('scanproof-runs/20261129-101500-mixed-claimed-fix-s0'))

Nothing is lost: ``run.json`` is written before anything starts and every op is
flushed as it happens, so a run stopped by Ctrl-C or a crash leaves a history
that ``scanproof check`` can still judge, and the cluster is always torn down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness import schema as S
from harness._execute import execute_locust, execute_scripted
from harness._locust_driver import package_version
from harness.checkers import CheckConfig, judge
from harness.client import DEFAULT_TIMEOUT_S
from harness.cluster import Cluster
from harness.contract import Contract
from harness.driver import Timing
from harness.errors import InfrastructureError, ScanproofError, UsageError
from harness.history import FaultRecord, History, load_history, write_tables
from harness.nemesis import check_supported
from harness.plan import DEFAULT_SCAN_S, make_plan
from harness.run_record import new_record, now_iso, read_record, write_record
from harness.scenario import Scenario
from harness.verdict import Verdict

DEFAULT_APP = "reference_impl.app:app"
DEFAULT_PRESET = "claimed-fix"
VERDICT_JSON = "verdict.json"
DEADLINE_SLACK = 1.5
RETENTION_SLACK = 0.1
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """Everything a chaos run needs; the defaults are ``scanproof run``'s."""

    scenario: Scenario
    app: str = DEFAULT_APP
    preset: str | None = None  # reference service only; default claimed-fix
    flags: Mapping[str, Any] = field(default_factory=dict)  # reference service overrides
    seed: int = 0
    workers: int | None = None  # default: the scenario's
    router: str = "round-robin"
    redis: str = "embedded"
    duration_s: float | None = None  # real seconds of the active phase
    tenants: int | None = None
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    time_scale: float | None = None  # reference service: REFIMPL_TIME_SCALE
    contract: Contract = field(default_factory=Contract)
    out: Path | None = None
    thresholds: Mapping[str, int] = field(default_factory=dict)
    allow_destructive: bool = False
    allow_remote_faults: bool = False
    driver: str = "scripted"  # scripted | locust
    users: int = 10  # locust only: concurrent users (each one tenant)
    spawn_rate: float = 10.0  # locust only: users started per second

    @property
    def is_reference(self) -> bool:
        return self.app.startswith("reference_impl.")


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: Path
    verdict: Verdict
    status: str  # complete | interrupted | crashed


def default_run_dir(options: RunOptions) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    preset = options.preset or (DEFAULT_PRESET if options.is_reference else "app")
    return Path("scanproof-runs") / f"{stamp}-{options.scenario.name}-{preset}-s{options.seed}"


def _service_env(options: RunOptions) -> dict[str, str]:
    if not options.is_reference:
        if options.preset or options.flags:
            raise UsageError(
                f"--preset/--flag apply to the reference service only, not --app {options.app}"
            )
        return {}
    env = {"REFIMPL_PRESET": options.preset or DEFAULT_PRESET, "REFIMPL_SEED": str(options.seed)}
    if options.flags:
        env["REFIMPL_FLAGS"] = json.dumps(dict(options.flags))
    if options.time_scale is not None:
        env["REFIMPL_TIME_SCALE"] = repr(options.time_scale)
    return env


def _read_meta(router_url: str, contract: Contract) -> dict[str, Any]:
    if not contract.meta_path:
        return {}
    try:
        response = httpx.get(router_url + contract.meta_path, timeout=5.0)
    except httpx.HTTPError as exc:
        raise InfrastructureError(
            f"cannot read {contract.meta_path} from the cluster: {exc}"
        ) from exc
    if response.status_code != 200:
        return {}
    body = response.json()
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True, slots=True)
class _Resolved:
    time_scale: float
    retention_s: float  # real seconds, after the safety margin
    scan_deadline_s: float
    scan_s: float  # expected scan length in service seconds


def _resolve(options: RunOptions, meta: Mapping[str, Any]) -> _Resolved:
    def pick(name: str) -> float | None:
        for value in (getattr(options, name), getattr(options.contract, name), meta.get(name)):
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None

    scale = meta.get("time_scale", options.time_scale or 1.0)
    scale = float(scale) if isinstance(scale, int | float) and scale > 0 else 1.0

    def need(name: str) -> float:
        value = pick(name)
        if value is None:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} is needed: {options.app} has no meta endpoint that states it "
                f"(pass {flag} SECONDS or set {name} in the --contract file)"
            )
        return value

    retention, deadline = need("retention_s"), need("scan_deadline_s")
    if options.scan_deadline_s is None and options.contract.scan_deadline_s is None:
        # The app's own deadline, from its meta, gets slack for scheduling delays: on a
        # loaded 2-core machine a scaled scan can be late by a good fraction of a second,
        # while a scan that is really stuck never finishes at all.
        deadline *= DEADLINE_SLACK
    # A scan is first *seen* finished some time after it finished: one poll later at
    # best, a whole rotation of workers later when stale workers keep saying scanning
    # (F8), more on a loaded machine. Retention is judged from that sighting, so the last
    # tenth of the window (and at least a poll) is left unjudged: a correct service is
    # never blamed at the edge.
    margin = max(options.scenario.poll_interval * scale, RETENTION_SLACK * retention)
    expected = meta.get("expected_scan_s")
    scan_s = float(expected) / scale if isinstance(expected, int | float) else DEFAULT_SCAN_S
    return _Resolved(scale, max(retention - margin, margin), deadline, scan_s)


def _scenario_for(options: RunOptions, scale: float) -> Scenario:
    scenario = options.scenario
    changes: dict[str, Any] = {}
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
    if options.driver == "scripted":
        return {"name": "scripted"}
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
    }


def _ops_summary(history: History) -> dict[str, Any]:
    ops = history.ops
    ok = ops[ops[S.OUTCOME] == "ok"]
    accepted = set(ok.loc[ok[S.KIND] == "discover", S.SCAN_ID]) - {""}
    said = ok[(ok[S.KIND] == "status") & ok[S.SCAN_ID].isin(accepted)]
    return {
        "scans": {
            "accepted": len(accepted),
            "seen_complete": said.loc[said[S.BODY_STATUS] == "complete", S.SCAN_ID].nunique(),
            "seen_failed": said.loc[said[S.BODY_STATUS] == "failed", S.SCAN_ID].nunique(),
        },
        "total": len(ops),
        **{o: int((ops[S.OUTCOME] == o).sum()) for o in S.OUTCOMES},
        "by_kind": {k: int((ops[S.KIND] == k).sum()) for k in S.KINDS},
        "unpaired": history.unpaired_ops,
    }


def judge_run_dir(run_dir: Path, *, thresholds: Mapping[str, int] | None = None) -> Verdict:
    """Re-judge a stored run from its shards and run.json; writes tables and verdict.json."""
    record = read_record(run_dir)
    check = record.get("check") or {}
    retention, deadline = check.get("retention_s"), check.get("scan_deadline_s")
    if not retention or not deadline:
        raise UsageError(
            f"{run_dir}/run.json has no check settings (the run stopped before it started "
            "its cluster); nothing to judge"
        )
    history = load_history(run_dir)
    write_tables(history, run_dir)
    infra = list(record.get("infrastructure_errors") or [])
    if record.get("status") == "crashed":
        infra.append(f"the run crashed: {record.get('crash', 'unknown error')}")
    verdict = judge(
        history,
        CheckConfig(
            retention_s=float(retention),
            scan_deadline_s=float(deadline),
            final_heal_ns=check.get("final_heal_ns"),
        ),
        thresholds=thresholds if thresholds is not None else record.get("thresholds") or {},
        infrastructure_errors=tuple(infra),
    )
    doc = verdict.to_json()
    doc["ops"] = _ops_summary(history)
    doc["status"] = record.get("status")
    (run_dir / VERDICT_JSON).write_text(json.dumps(doc, indent=2) + "\n")
    return verdict


def run_chaos(options: RunOptions, *, progress: Progress | None = None) -> RunResult:
    """Run one scenario against a fresh cluster and judge it; see the module docstring."""
    driver = _driver_config(options)  # bad driver options: refused before anything exists
    run_dir = options.out or default_run_dir(options)
    if (run_dir / "run.json").exists():
        raise UsageError(f"--out {run_dir} already holds a run; pass another --out or remove it")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = _service_env(options)
    scenario = options.scenario
    record = new_record(
        config={
            "app": options.app,
            "preset": env.get("REFIMPL_PRESET"),
            "flag_overrides": dict(options.flags),
            "scenario": dataclasses.asdict(scenario),
            "seed": options.seed,
            "workers": options.workers or scenario.workers,
            "router": options.router,
            "redis": {"spec": options.redis},
            "contract": dataclasses.asdict(options.contract),
            "driver": driver,
        }
    )
    record["thresholds"] = dict(options.thresholds)
    record["retry_policies"] = {
        "client": f"no retries; {DEFAULT_TIMEOUT_S} s timeout per request",
        "nemesis_redis": "no retries; 2 s socket timeout (harness.redis_backends.make_client)",
    }
    write_record(run_dir, record)
    status = "crashed"
    try:
        with Cluster.start(
            app=options.app,
            workers=options.workers or scenario.workers,
            router=options.router,
            redis=options.redis,
            env=env,
            allow_destructive=options.allow_destructive,
            allow_remote_faults=options.allow_remote_faults,
        ) as cluster:
            meta = _read_meta(cluster.router_url, options.contract)
            resolved = _resolve(options, meta)
            scenario = _scenario_for(options, resolved.time_scale)
            plan = make_plan(scenario, seed=options.seed, scan_s=resolved.scan_s)
            if any(s.fail for s in plan.scans) and not options.contract.fail_body:
                raise UsageError(
                    f"scenario {scenario.name} asks scans to fail (failing = "
                    f"{scenario.failing}) but the contract has no fail_body; add one or "
                    "set failing = 0"
                )
            check_supported(plan.faults, cluster.redis, options.redis)
            record["config"]["scenario"] = dataclasses.asdict(scenario)
            record["config"]["redis"] = {
                "spec": options.redis,
                "backend": cluster.redis.name,
                "url": cluster.redis_url,
            }
            record["config"]["time_scale"] = resolved.time_scale
            record["flags"] = meta.get("flags", {})
            record["retry_policies"]["service"] = meta.get("retry_policy", "unknown")
            record["meta"] = meta
            record["check"] = {
                "retention_s": resolved.retention_s,
                "scan_deadline_s": resolved.scan_deadline_s,
                "final_heal_ns": None,
            }
            t0 = time.monotonic()
            record["t0_ns"] = int(t0 * 1e9)
            timing = Timing(
                t0=t0,
                scale=resolved.time_scale,
                retention_s=resolved.retention_s,
                scan_deadline_s=resolved.scan_deadline_s,
                end=t0 + plan.end_s * resolved.time_scale,
            )
            write_record(run_dir, record)
            nemesis_records: list[FaultRecord] = []
            execute = execute_scripted if options.driver == "scripted" else execute_locust
            heal_ns, errors = asyncio.run(
                execute(cluster, plan, timing, options, run_dir, progress, nemesis_records)
            )
            record["check"]["final_heal_ns"] = heal_ns
            record["infrastructure_errors"] = errors
            record["warnings"] = [
                f"fault {r.fault_id} {r.fault} on {r.target} did not land: {r.evidence}"
                for r in nemesis_records
                if not r.landed
            ]
            record["restarts"] = [dataclasses.asdict(r) for r in cluster.restarts]
        status = "complete"
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
        record["crash"] = f"{type(exc).__name__}: {exc}"
        raise InfrastructureError(f"the run crashed: {type(exc).__name__}: {exc}") from exc
    finally:
        record["status"] = status
        record["ended_at"] = now_iso()
        if status == "refused" and created and [p.name for p in run_dir.iterdir()] == ["run.json"]:
            shutil.rmtree(run_dir)  # nothing ran: leave no empty run directory behind
        else:
            write_record(run_dir, record)
        if status not in ("complete", "refused") and progress is not None:
            progress(f"run {status}; what was recorded is in {run_dir} (scanproof check {run_dir})")
    verdict = judge_run_dir(run_dir)
    return RunResult(run_dir=run_dir, verdict=verdict, status=status)


def print_progress(line: str) -> None:
    """The default progress sink: one line per update on stderr."""
    print(line, file=sys.stderr, flush=True)
