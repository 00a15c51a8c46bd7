"""Command workers (``--cmd``): any command as the workers behind scanproof's router.

A Node.js scan service (``tests/zoo/node/scan_service.js``, standard library only) is
judged by ``scanproof gate`` with its contract: the correct variant passes, the one
that keeps scans in process memory fails with ``status_not_found``. gunicorn runs the
reference service as in production and reproduces the built-in cluster's not_found
rate. Faults act on a worker's whole process group (a gunicorn master and its
workers), and nothing outlives a ``scanproof run --cmd`` however it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness import Cluster, ClusterEvent, EventKind
from harness.cluster._keeper import descendants
from harness.cluster._proc import process_state, wait_until
from harness.errors import InfrastructureError, UsageError
from tests.processes import assert_all_gone, record, spawn
from tests.scanproof_cli import ROOT, scanproof

pytestmark = pytest.mark.processes

NODE = "node tests/zoo/node/scan_service.js"
CONTRACT = str(ROOT / "tests" / "zoo" / "node" / "scan_service.toml")
GUNICORN = (
    "gunicorn reference_impl.app:app -k uvicorn.workers.UvicornWorker -b 127.0.0.1:{port} -w {n}"
)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gate(out: Path, cmd: str) -> subprocess.CompletedProcess[str]:
    return scanproof(
        "gate", "--cmd", cmd, "--contract", CONTRACT, "--scenario", "steady",
        "--duration", "6", "--workers", "3", "--redis", "embedded", "--out", str(out),
        timeout=240,
    )  # fmt: skip


def _verdict(run_dir: Path) -> dict[str, dict[str, object]]:
    anomalies: dict[str, dict[str, object]] = json.loads((run_dir / "verdict.json").read_text())[
        "anomalies"
    ]
    return anomalies


# ------------------------------------------------------------------ a Node.js service
def test_node_service_in_memory_answers_404_on_the_other_workers(tmp_path: Path) -> None:
    with Cluster.start(
        cmd=f"{NODE} --memory", workers=2, ready_path="/healthz", log_dir=tmp_path
    ) as cluster:
        first, second = (w.url for w in cluster.workers)
        tenant = {"X-Tenant": "t1"}
        made = httpx.post(f"{first}/v3/audits", json={"target": "BTC"}, headers=tenant)
        assert made.status_code == 201
        ref = made.json()["audit"]["ref"]
        assert httpx.get(f"{first}/v3/audits/{ref}", headers=tenant).status_code == 200
        assert httpx.get(f"{second}/v3/audits/{ref}", headers=tenant).status_code == 404
    log = (tmp_path / "0.log").read_text()
    assert "=== scanproof: worker 0, incarnation 1, pid" in log
    assert "(memory)" in log


@pytest.mark.slow
def test_gate_passes_the_correct_node_service(tmp_path: Path) -> None:
    done = _gate(tmp_path / "run", NODE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _verdict(tmp_path / "run")["status_not_found"]["opportunities"]


@pytest.mark.slow
def test_gate_fails_the_node_service_that_keeps_scans_in_memory(tmp_path: Path) -> None:
    done = _gate(tmp_path / "run", f"{NODE} --memory")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert _verdict(tmp_path / "run")["status_not_found"]["verdict"] == "fail"


# --------------------------------------------------------- gunicorn, as in production
@pytest.mark.slow
def test_gunicorn_reproduces_the_built_in_clusters_not_found_rate(tmp_path: Path) -> None:
    common = ("run", "--scenario", "seed-repro", "--seed", "3", "--preset", "claimed-fix",
              "--quiet")  # fmt: skip
    built_in = scanproof(*common, "--out", str(tmp_path / "built-in"), timeout=240)
    gunicorn = scanproof(
        *common, "--cmd", GUNICORN.replace("{n}", "1"), "--out", str(tmp_path / "gunicorn"),
        timeout=240,
    )  # fmt: skip
    for done in (built_in, gunicorn):  # run judges; only gate exits 1 on a failure
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ours = _verdict(tmp_path / "built-in")["status_not_found"]
    theirs = _verdict(tmp_path / "gunicorn")["status_not_found"]
    assert ours["verdict"] == theirs["verdict"] == "fail"
    low, high = ours["ci95"]  # type: ignore[misc]
    assert low <= theirs["rate"] <= high, (ours, theirs)  # type: ignore[operator]
    config = json.loads((tmp_path / "gunicorn" / "run.json").read_text())
    assert "gunicorn" in json.dumps(config)


# ------------------------------------------------------------- faults on a whole group
def test_faults_act_on_the_whole_gunicorn_process_group(tmp_path: Path) -> None:
    events: list[ClusterEvent] = []
    with Cluster.start(
        cmd=GUNICORN.replace("{n}", "2"),
        workers=2,
        preset="claimed-fix",
        on_event=events.append,
        log_dir=tmp_path,
    ) as cluster:
        supervisor = cluster.supervisor
        # Ready means the port accepts: the gunicorn master binds it before it forks
        # its workers, so wait for both (master + 2 workers; the group may also hold
        # the /bin/sh that runs the command, when the shell does not exec it).
        wait_until(
            lambda: sum(map(_is_gunicorn, supervisor.group(1))) == 3,  # type: ignore[attr-defined]
            timeout=15.0,
            what="gunicorn to fork its 2 workers",
        )
        group = supervisor.group(1)  # type: ignore[attr-defined]
        assert "gunicorn" in _cmdline(group[0])

        cluster.pause(1)
        assert cluster.workers[1].stopped
        assert all(process_state(p) == "T" for p in group)
        cluster.resume(1)
        assert all(process_state(p) not in ("T", None) for p in group)

        old = record(group)
        cluster.kill(1)
        assert not cluster.workers[1].alive
        assert_all_gone(old, seconds=5.0)

        cluster.restart(1)
        assert cluster.workers[1].alive
        assert cluster.workers[1].pid not in old
        assert httpx.get(f"{cluster.workers[1].url}/api/v1/opportunities/_meta").is_success

        before = {w.pid for w in cluster.workers}
        cluster.deploy(rolling=True)
        assert not before & {w.pid for w in cluster.workers}
        assert supervisor.incarnations == [2, 3]
        assert httpx.get(f"{cluster.router_url}/api/v1/opportunities/_meta").is_success
    kinds = [e.kind for e in events]
    assert kinds[:4] == [EventKind.WORKER_PAUSED, EventKind.WORKER_RESUMED,
                         EventKind.WORKER_KILLED, EventKind.WORKER_RESTARTED]  # fmt: skip
    assert kinds[-1] == EventKind.DEPLOY_FINISHED
    assert (tmp_path / "1.log").read_text().count("=== scanproof: worker 1, incarnation") == 3


def test_a_command_that_does_not_exist_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--cmd 'cd \. && no-such-program-xyz'.*not found"):
        Cluster.start(cmd="cd . && no-such-program-xyz", workers=1)


def test_a_command_that_exits_is_an_infrastructure_error_with_its_log() -> None:
    with pytest.raises(InfrastructureError, match=r"exited with code 3(.|\n)*bye from worker 0"):
        Cluster.start(cmd="echo bye from worker $WORKER_ID; exit 3", workers=1)


# ------------------------------------------------------------------------ no orphans
def _is_gunicorn(pid: int) -> bool:
    """A gunicorn master or worker (not the keeper or shell that carry its command line)."""
    line = _cmdline(pid)
    return "bin/gunicorn" in line and "_keeper.py" not in line and not line.startswith("/bin/sh")


def _wait_for_gunicorns(
    proc: subprocess.Popen[bytes], count: int, out: Path, seconds: float = 90.0
) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
        tree = set(descendants(proc.pid))
        if sum(_is_gunicorn(p) for p in tree) >= count:
            return tree
        time.sleep(0.05)
    # Once seen here (1 in ~10 fast-tier runs, never alone): say where the run was.
    seen = [f"{p} {process_state(p)} {_cmdline(p)[:100]}" for p in sorted(descendants(proc.pid))]
    state = process_state(proc.pid)
    made = sorted(q.name for q in out.iterdir()) if out.is_dir() else "not created"
    proc.send_signal(signal.SIGABRT)  # -X faulthandler: every thread's stack on stderr
    stderr = proc.communicate()[1].decode()[-6000:]
    pytest.fail(
        f"{count} gunicorn processes did not start in {seconds:g} s; "
        f"scanproof {proc.pid} is in state {state}; --out: {made}; "
        f"processes below scanproof: {seen}\nscanproof's stderr:\n{stderr}"
    )


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_no_gunicorn_process_outlives_scanproof_run(tmp_path: Path, signum: int) -> None:
    proc = spawn(
        [sys.executable, "-X", "faulthandler", "-m", "harness", "run", "--scenario", "steady",
         "--duration", "120",
         "--workers", "2", "--cmd", GUNICORN.replace("{n}", "2"), "--quiet",
         "--out", str(tmp_path / "run")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    # 2 masters, 2 workers each
    tree = record(_wait_for_gunicorns(proc, count=6, out=tmp_path / "run"))
    os.kill(proc.pid, signum)
    proc.communicate(timeout=30)
    assert_all_gone(tree, seconds=10.0)
