"""Job workers beside the web workers: started and stopped with the cluster, never
orphaned, and the faults aimed at them land with proof.

The service is tests/zoo/queue_web.py (a FastAPI tier that only enqueues) with
tests/zoo/queue_worker.py as its job workers (a Redis list queue, not Celery).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.cluster import Cluster
from harness.cluster._keeper import descendants
from harness.faults.nemesis import Nemesis
from harness.history.tables import Completion, FaultRecord, HistoryWriter
from harness.run.plan import PlannedFault
from harness.run.scenario import FaultStep
from harness.targets.contract import Contract
from tests.processes import assert_all_gone, record, spawn
from tests.scanproof_cli import ROOT

pytestmark = [pytest.mark.processes, pytest.mark.timeout(90)]

WEB = "tests.zoo.queue_web:app"
JOBS = f"{sys.executable} -m tests.zoo.queue_worker"
RUN = "sptest01"


def _wait(condition: object, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster.start(
        app=WEB,
        workers=1,
        redis="embedded",
        cwd=str(ROOT),
        env={"SCANPROOF_RUN_ID": RUN, "QUEUE_JOB_S": "0.2"},
        job_workers=JOBS,
        job_worker_count=2,
        job_ready_log=r"queue worker \d+ ready",
        log_dir=tmp_path / "logs",
    ) as started:
        yield started


def _status(client: httpx.Client, scan_id: str) -> str:
    return str(client.get(f"/scans/{scan_id}").json()["status"])


def test_job_workers_start_run_jobs_and_stop_with_the_cluster(tmp_path: Path) -> None:
    with Cluster.start(
        app=WEB,
        workers=1,
        redis="embedded",
        cwd=str(ROOT),
        env={"SCANPROOF_RUN_ID": RUN, "QUEUE_JOB_S": "0.2"},
        job_workers=JOBS,
        job_worker_count=2,
        job_ready_log=r"queue worker \d+ ready",
        log_dir=tmp_path / "logs",
    ) as cluster:
        jobs = cluster.job_workers
        assert jobs is not None
        infos = jobs.workers
        assert [(w.index, w.alive, w.url, w.port) for w in infos] == [
            (0, True, "", 0),
            (1, True, "", 0),
        ]
        assert {w.pid for w in infos} <= set(cluster.pids())
        for index in (0, 1):  # each has its own log, JOB_WORKER_ID and REDIS_URL
            assert (
                f"queue worker {index} ready"
                in (tmp_path / "logs" / f"job-{index}.log").read_text()
            )
        with httpx.Client(base_url=cluster.router_url, timeout=5.0) as client:
            scan_id = client.post("/scans").json()["scan_id"]
            _wait(lambda: _status(client, scan_id) == "complete", "the job to run")
        every = record(cluster.pids())
    assert_all_gone(every, seconds=5.0)


def test_a_bad_job_worker_command_is_refused_in_one_line() -> None:
    from harness.errors import UsageError

    with pytest.raises(
        UsageError, match=r"^--job-workers 'no-such-cmd-x': 'no-such-cmd-x' is not on PATH"
    ):
        Cluster.start(app=WEB, workers=1, job_workers="no-such-cmd-x")
    with pytest.raises(UsageError, match=r"^--job-worker-count: applies to job workers only"):
        Cluster.start(app=WEB, workers=1, job_worker_count=2)


def _apply(cluster: Cluster, writer: HistoryWriter, step: FaultStep, **kw: object) -> FaultRecord:
    nemesis = Nemesis(
        cluster,
        writer,
        contract=Contract(**kw),
        time_scale=1.0,
        seed=0,
        run_id=RUN,  # type: ignore[arg-type]
    )
    return asyncio.run(nemesis.apply(PlannedFault(at_s=0.0, step=step, worker=-1)))


def test_job_worker_kill_and_pause_land_on_the_named_job_worker(
    cluster: Cluster, tmp_path: Path
) -> None:
    jobs = cluster.job_workers
    assert jobs is not None
    old = jobs.workers[1].pid
    with HistoryWriter(tmp_path / "run", proc="nemesis") as writer:
        killed = _apply(
            cluster, writer, FaultStep(at=0.0, fault="job_worker_kill", worker=1, down=0.1)
        )
        assert killed.landed, killed
        assert killed.target == "job:1"
        assert jobs.workers[1].pid != old
        assert jobs.workers[1].alive
        assert f"SIGKILL pid {old}" in killed.evidence
        paused = _apply(
            cluster, writer, FaultStep(at=0.0, fault="job_worker_pause", worker=0, duration=0.2)
        )
        assert paused.landed, paused
        assert paused.target == "job:0"
        assert not jobs.workers[0].stopped  # resumed after the pause
        restarted = _apply(cluster, writer, FaultStep(at=0.0, fault="job_worker_restart", worker=0))
        assert restarted.landed
        assert restarted.target == "job:0"
    log = (tmp_path / "logs" / "job-1.log").read_text()
    assert log.count("queue worker 1 ready") == 2  # two incarnations, one log


def test_drop_queued_lists_exactly_the_scans_whose_messages_it_removed(
    cluster: Cluster, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    jobs = cluster.job_workers
    assert jobs is not None
    with (
        httpx.Client(base_url=cluster.router_url, timeout=5.0) as client,
        HistoryWriter(run_dir, proc="driver-0") as driver,
        HistoryWriter(run_dir, proc="nemesis") as writer,
    ):

        def create() -> str:  # recorded as the scripted driver records a create
            op = driver.invoke(kind="discover", tenant="t")
            scan_id = str(client.post("/scans").json()["scan_id"])
            driver.complete(op, Completion(outcome="ok", http_status=201, scan_id=scan_id))
            return scan_id

        done = [create(), create()]
        _wait(lambda: all(_status(client, s) == "complete" for s in done), "the first jobs")
        for index in (0, 1):  # no job worker takes anything off the queue now
            jobs.pause(index)
        queued = [create() for _ in range(3)]
        dropped = _apply(
            cluster,
            writer,
            FaultStep(at=0.0, fault="drop_queued"),
            # the contract says qz:{run}:queue; written bound here while contract.py's
            # placeholders do not list {run} yet
            keys={"queue": (f"qz:{RUN}:queue",), "inflight": (f"qz:{RUN}:inflight",)},
        )
        for index in (0, 1):
            jobs.resume(index)
        assert dropped.landed, dropped
        assert dropped.destructive
        assert dropped.affected_scans == ",".join(sorted(queued))
        assert "3 messages in 1 queue keys dropped (qz:sptest01:queue)" in dropped.evidence
        # the dropped scans' jobs are gone: they read queued for ever; nothing else moved
        assert [_status(client, s) for s in queued] == ["queued"] * 3
        assert [_status(client, s) for s in done] == ["complete"] * 2


def test_sigkill_of_scanproof_up_leaves_no_job_worker_behind() -> None:
    proc = spawn(
        [
            sys.executable,
            "-m",
            "harness",
            "up",
            "--app",
            WEB,
            "--workers",
            "1",
            "--redis",
            "embedded",
            "--job-workers",
            JOBS,
            "--job-worker-count",
            "2",
            "--job-ready-log",
            "ready",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "ready; Ctrl-C to stop" in line:
                break
        job_lines = [line for line in lines if line.startswith("job ")]
        assert len(job_lines) == 2, lines
        tree = record(descendants(proc.pid))
        job_pids = {int(line.split("pid ")[1].split()[0]) for line in job_lines}
        assert job_pids <= set(tree)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert_all_gone(tree, seconds=8.0)
