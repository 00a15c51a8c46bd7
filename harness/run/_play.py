"""Executing a plan: the driver (scripted, or locust in its own process) and the nemesis.

Private to :mod:`harness.run.runner`, which sets up the cluster before and judges after.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cluster import Cluster
from harness.cluster.deployment import Deployment
from harness.errors import ScanproofError
from harness.faults.nemesis import Nemesis
from harness.history.tables import FaultRecord, HistoryWriter
from harness.run._locust import locust_command, locust_env, run_locust
from harness.run._targets import keep_alive, max_rps
from harness.run.client import ScanClient
from harness.run.driver import ScriptedDriver, Timing
from harness.run.plan import Plan

if TYPE_CHECKING:
    from harness.run.runner import Progress, RunOptions


def _nemesis(
    cluster: Cluster | Deployment,
    writer: HistoryWriter,
    options: RunOptions,
    timing: Timing,
    plan: Plan,
    records: list[FaultRecord],
) -> Nemesis:
    nemesis = Nemesis(
        cluster,
        writer,
        contract=options.contract,
        time_scale=timing.scale,
        seed=plan.seed,
        run_id=options.run_id,
    )
    nemesis.records = records  # shared, so the caller sees faults even after a crash
    return nemesis


async def _fault_schedule(nemesis: Nemesis, plan: Plan, timing: Timing, errors: list[str]) -> int:
    """Apply the plan's faults on time, then the final heal; returns the heal's start time."""

    async def one_fault(planned: Any) -> None:
        await asyncio.sleep(max(0.0, timing.at(planned.at_s) - time.monotonic()))
        try:
            await nemesis.apply(planned)
        except ScanproofError as exc:  # a fault that did not land: the run is unknown
            errors.append(f"fault {planned.step.fault}: {exc}")

    await asyncio.gather(*(one_fault(f) for f in plan.faults))
    await asyncio.sleep(max(0.0, timing.at(plan.heal_at_s) - time.monotonic()))
    record = await nemesis.heal()
    if not record.landed:
        errors.append(f"final heal did not restore the cluster: {record.evidence}")
    return record.t_start_ns


async def execute_scripted(
    cluster: Cluster | Deployment,
    plan: Plan,
    timing: Timing,
    options: RunOptions,
    run_dir: Path,
    progress: Progress | None,
    records: list[FaultRecord],
) -> tuple[int | None, list[str]]:
    """Drive the plan and the faults; returns the final heal time and infrastructure errors."""
    errors: list[str] = []
    with (
        HistoryWriter(run_dir, proc="driver-0") as ops_writer,
        HistoryWriter(run_dir, proc="nemesis") as fault_writer,
    ):
        client = ScanClient(
            cluster.router_url,
            ops_writer,
            contract=options.contract,
            worker_urls=[w.url for w in cluster.workers],
            max_rps=max_rps(options),
            keep_alive=keep_alive(options),
        )
        driver = ScriptedDriver(client, plan, timing)
        nemesis = _nemesis(cluster, fault_writer, options, timing, plan, records)

        async def report() -> None:
            while True:
                await asyncio.sleep(1.0)
                if progress is not None:
                    c = driver.counts
                    active = ",".join(sorted(nemesis.active)) or "none"
                    progress(
                        f"[{time.monotonic() - timing.t0:5.1f}s/{timing.end - timing.t0:.0f}s] "
                        f"ops {c.ops}  scans {c.scans_started}/{len(plan.scans)} started "
                        f"{c.scans_finished} done  owner not_found {c.not_found}  "
                        f"results 404 {c.results_404}  errors {c.errors}  faults: {active}"
                    )

        reporter = asyncio.create_task(report())
        try:
            _, heal_ns = await asyncio.gather(
                driver.run(), _fault_schedule(nemesis, plan, timing, errors)
            )
        finally:
            reporter.cancel()
            await client.aclose()
    return heal_ns, errors


async def execute_locust(
    cluster: Cluster | Deployment,
    plan: Plan,
    timing: Timing,
    options: RunOptions,
    run_dir: Path,
    progress: Progress | None,
    records: list[FaultRecord],
) -> tuple[int | None, list[str]]:
    """Like :func:`execute_scripted`, with locust (its own process) as the driver."""
    errors: list[str] = []
    with HistoryWriter(run_dir, proc="nemesis") as fault_writer:
        nemesis = _nemesis(cluster, fault_writer, options, timing, plan, records)
        run_s = timing.end - time.monotonic()
        cmd = locust_command(
            cluster.router_url,
            run_dir,
            users=options.users,
            spawn_rate=options.spawn_rate,
            run_s=run_s,
        )
        env = locust_env(
            run_dir,
            seed=plan.seed,
            workload=plan.scenario,
            contract=options.contract,
            given={
                "time_scale": options.time_scale,
                "retention_s": options.retention_s,
                "scan_deadline_s": options.scan_deadline_s,
            },
        )
        if progress is not None:
            progress(f"locust: {options.users} users, log in {run_dir}/locust.log")
        # locust's live counts (answers, anomalies so far) become progress lines
        locust = asyncio.create_task(
            run_locust(cmd, env, run_dir, progress=progress, run_s=math.ceil(run_s))
        )
        faults = asyncio.create_task(_fault_schedule(nemesis, plan, timing, errors))
        try:
            _, heal_ns = await asyncio.gather(locust, faults)
        finally:
            # gather ends as soon as one of them fails or is cancelled (Ctrl-C), and the
            # event loop closing would then cut locust's stop short: await both here.
            # A task already cancelled is stopping: cancelling it again would cut its
            # stop short (SIGKILL before locust writes its reports).
            for task in (locust, faults):
                if not task.done() and not task.cancelling():
                    task.cancel()
            await asyncio.wait((locust, faults))
    return heal_ns, errors
