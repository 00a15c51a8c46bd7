"""Job worker faults: kill, pause or restart one of a cluster's job workers, with proof.

The nemesis calls these for ``job_worker_kill`` (SIGKILL the worker's process group;
after ``down`` service seconds a new incarnation starts: landed when the pid
changed), ``job_worker_pause`` (SIGSTOP the group for ``duration``: landed when every
process of the group was seen stopped, then SIGCONT) and ``job_worker_restart``
(SIGTERM, up to 5 s, then SIGKILL, and a new incarnation: landed when the pid
changed). The faults table names the target ``job:<i>``. Blocking calls run in a
thread so the clients' event loop keeps going.

>>> job_target(2)
'job:2'
"""

from __future__ import annotations

import asyncio
import random

from harness.cluster.jobs import JobSupervisor
from harness.errors import UsageError


def job_target(index: int) -> str:
    """The faults table's name of job worker ``index``."""
    return f"job:{index}"


def job_workers_of(cluster: object, fault: str) -> JobSupervisor:
    """The cluster's job workers; UsageError (one line) when it has none."""
    jobs = getattr(cluster, "job_workers", None)
    if not isinstance(jobs, JobSupervisor):
        raise UsageError(
            f'fault {fault!r} needs job workers: start the cluster with --job-workers "CMD" '
            "(Cluster.start(job_workers=...)) or drop the fault"
        )
    return jobs


def pick(jobs: JobSupervisor, worker: int, rng: random.Random) -> int:
    """The job worker a fault aims at: ``worker`` (modulo the count), or by the seed."""
    count = len(jobs.workers)
    return worker % count if worker >= 0 else rng.randrange(count)


async def apply_job_fault(
    jobs: JobSupervisor, fault: str, index: int, *, down_s: float, pause_s: float
) -> tuple[bool, str]:
    """Carry out one job worker fault on job worker ``index``; (landed, evidence)."""
    old = jobs.workers[index].pid
    if fault == "job_worker_pause":
        await asyncio.to_thread(jobs.pause, index)
        stopped = len(jobs.group(index))  # pause() saw every one of them stopped
        await asyncio.sleep(pause_s)
        await asyncio.to_thread(jobs.resume, index)
        return True, f"pid {old} group ({stopped} processes) SIGSTOP for {pause_s:.2f} s"
    if fault == "job_worker_kill":
        await asyncio.to_thread(jobs.kill, index)
        await asyncio.sleep(down_s)
        seconds = await asyncio.to_thread(jobs.restart, index)
        new = jobs.workers[index].pid
        return new != old, (
            f"SIGKILL pid {old} group; down {down_s:.2f} s; pid {new} ready in "
            f"{seconds * 1000:.0f} ms"
        )
    if fault == "job_worker_restart":
        seconds = await asyncio.to_thread(lambda: jobs.restart(index, graceful=True))
        new = jobs.workers[index].pid
        return new != old, f"SIGTERM pid {old} group; pid {new} ready in {seconds * 1000:.0f} ms"
    raise UsageError(f"fault {fault!r} is no job worker fault")


async def heal_job_workers(jobs: JobSupervisor) -> list[str]:
    """Every job worker alive and running again; what was done, one note each."""
    notes = []
    for worker in jobs.workers:
        if not worker.alive:
            await asyncio.to_thread(jobs.restart, worker.index)
            notes.append(f"job worker {worker.index} restarted")
        elif worker.stopped:
            await asyncio.to_thread(jobs.resume, worker.index)
            notes.append(f"job worker {worker.index} resumed")
    return notes


def job_workers_healthy(jobs: JobSupervisor | None) -> bool:
    """True when there are no job workers, or all are alive and running."""
    return jobs is None or all(w.alive and not w.stopped for w in jobs.workers)
