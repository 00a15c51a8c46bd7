"""No process of a cluster outlives what started it, however that ends.

``scanproof up`` runs as a real subprocess; we record its whole process tree
(Redis, the router, the workers' parent and the workers) while it serves, end
it with SIGINT, SIGTERM or SIGKILL, and require every one of those processes
to be gone within a few seconds.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness import Cluster
from harness.cluster._proc import is_alive
from tests.processes import assert_all_gone, descendants, record, spawn

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]


def _start_up(*extra: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = spawn(
        [sys.executable, "-m", "harness", "up", "--app", "tests.apps.whoami:app", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = b""
    deadline = time.monotonic() + 60
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"Ctrl-C to stop" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                proc.kill()
                pytest.fail(f"scanproof up did not become ready:\n{output.decode()}")
            chunk = os.read(proc.stdout.fileno(), 65536)  # unbuffered: select stays truthful
            if not chunk:
                _, err = proc.communicate(timeout=5)
                pytest.fail(f"scanproof up exited early:\n{output.decode()}{err.decode()}")
            output += chunk
    return proc, output.decode()


def _router_url(output: str) -> str:
    (line,) = [ln for ln in output.splitlines() if ln.startswith("router")]
    return line.split()[1]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_tears_everything_down_on_signal_and_exits_0(signum: int) -> None:
    proc, output = _start_up("--workers", "2", "--redis", "embedded")
    url = _router_url(output)
    assert httpx.get(f"{url}/whoami").status_code == 200
    tree = record(descendants(proc.pid))
    assert len(tree) >= 5  # Redis, router, workers' parent, 2 workers
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert b"stopping" in stderr
    assert_all_gone(tree, seconds=2.0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/whoami")


@pytest.mark.parametrize(
    "redis", ["embedded", pytest.param("server", marks=pytest.mark.real_redis)]
)
def test_sigkill_of_up_still_leaves_nothing_behind(redis: str) -> None:
    proc, _ = _start_up("--workers", "2", "--redis", redis)
    tree = record(descendants(proc.pid))
    assert len(tree) >= 5
    proc.kill()
    proc.communicate(timeout=10)
    assert_all_gone(tree)


def test_up_prints_every_address() -> None:
    proc, output = _start_up("--workers", "3", "--redis", "auto")
    try:
        lines = output.splitlines()
        assert [ln.split()[1] for ln in lines if ln.startswith("worker")] == ["0", "1", "2"]
        (redis_line,) = [ln for ln in lines if ln.startswith("redis")]
        assert "redis://127.0.0.1:" in redis_line
        assert "--redis auto picked" in redis_line
        worker_pids = {int(ln.split()[-1]) for ln in lines if ln.startswith("worker")}
        assert worker_pids <= descendants(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)


def test_exception_inside_the_with_block_still_tears_down() -> None:
    pids: dict[int, int] = {}

    def crash() -> None:
        with Cluster.start(app="tests.apps.whoami:app", workers=2) as cluster:
            pids.update(record(cluster.pids()))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        crash()
    assert len(pids) == 5
    assert_all_gone(pids, seconds=2.0)


def test_sigkill_of_a_python_harness_using_the_api_leaves_nothing_behind() -> None:
    script = (
        "import sys, time\n"
        "from harness import Cluster\n"
        "cluster = Cluster.start(app='tests.apps.whoami:app', workers=2)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = spawn([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    tree = record(descendants(proc.pid))
    assert len(tree) >= 5
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert_all_gone(tree)


def test_processes_started_from_a_short_lived_thread_outlive_that_thread() -> None:
    # The kernel's parent-death signal follows the *thread* that started a child. The
    # chaos runner restarts workers and Redis from asyncio.to_thread: those children
    # must live until the cluster closes, not until that thread ends.
    with Cluster.start(app="tests.apps.whoami:app", workers=1, start_method="spawn") as cluster:
        thread = threading.Thread(target=lambda: (cluster.restart(0), cluster.redis.restart()))
        thread.start()
        thread.join()
        pids = [cluster.workers[0].pid, *cluster.redis.pids()]
        identities = record(pids)
        # Asserting that nothing happens: watch for a bounded half second.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert all(is_alive(p) for p in pids)
            time.sleep(0.02)
        assert httpx.get(f"{cluster.router_url}/whoami").status_code == 200
        assert cluster.redis.ping()
    assert_all_gone(identities, seconds=2.0)
