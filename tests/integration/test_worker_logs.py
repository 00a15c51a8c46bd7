"""Worker logs are kept: every incarnation's stdout and stderr, bounded, after the cluster.

The app below is served by real worker processes (this module is the app:
``tests.integration.test_worker_logs:app``). It prints to stdout and stderr on
every request without flushing: the cluster runs workers unbuffered, so even
a SIGKILLed worker's last lines must reach its log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import Cluster
from harness.cluster._proc import is_alive, wait_until
from harness.cluster.router import Router
from harness.errors import InfrastructureError
from tests.processes import spawn

pytestmark = pytest.mark.processes

APP = "tests.integration.test_worker_logs:app"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Say who answered on stdout and stderr; ``/chatty/<n>`` prints ``n`` 1 KiB lines."""
    if scope["type"] != "http":
        return
    path, me = scope["path"], f"worker {os.environ.get('WORKER_ID')} pid {os.getpid()}"
    print(f"stdout: {me} served {path}")
    print(f"stderr: {me} served {path}", file=sys.stderr)
    if path.startswith("/chatty/"):
        for i in range(int(path.rsplit("/", 1)[1])):
            print(f"chatty line {i:06d} " + "x" * 1000)
        print(f"chatty done {me}")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


def _served_by(client: httpx.Client, worker: int, path: str) -> int:
    """Request ``path`` until worker ``worker`` answers it; that worker's pid."""
    for _ in range(8):
        answer = client.get(path)
        if answer.headers.get("x-scanproof-worker") == str(worker):
            return int(answer.text)
    raise AssertionError(f"worker {worker} never answered {path}")


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_both_incarnations_of_a_killed_worker_are_in_its_log_after_the_cluster(
    tmp_path: Path, start_method: str
) -> None:
    logs = tmp_path / "run" / "workers"
    with Cluster.start(
        app=APP,
        workers=2,
        log_dir=logs,
        start_method=start_method,  # type: ignore[arg-type]
    ) as cluster:
        assert cluster.log_dir == logs
        with httpx.Client(base_url=cluster.router_url, timeout=5.0) as client:
            first = _served_by(client, 1, "/before-kill")
            cluster.kill(1)
            cluster.restart(1)
            second = _served_by(client, 1, "/after-restart")
    assert first != second
    text = (logs / "1.log").read_text()
    headers = re.findall(r"^=== scanproof: worker 1, incarnation (\d+), pid (\d+), ", text, re.M)
    assert headers == [("1", str(first)), ("2", str(second))]
    # Each incarnation's lines come after its own header, stdout and stderr both.
    before, after = text.split(f"incarnation 2, pid {second}")
    for stream in ("stdout", "stderr"):
        assert f"{stream}: worker 1 pid {first} served /before-kill" in before
        assert f"{stream}: worker 1 pid {second} served /after-restart" in after
    assert "pid" in (logs / "0.log").read_text()
    assert (logs / "router.log").exists()
    # The pipes the workers wrote to stay in the cluster's own directory.
    assert sorted(p.name for p in logs.iterdir() if not p.name.endswith(".log")) == []


def test_a_chatty_worker_log_is_bounded_and_keeps_its_latest_lines(tmp_path: Path) -> None:
    logs = tmp_path / "workers"
    limit = 64 * 1024
    with Cluster.start(app=APP, workers=1, log_dir=logs, log_max_bytes=limit) as cluster:
        answer = httpx.get(cluster.router_url + "/chatty/400", timeout=10.0)  # ~400 KiB out
        pid = int(answer.text)
    data = (logs / "0.log").read_bytes()
    assert len(data) <= limit
    assert data.startswith(b"[scanproof: ")
    assert b"bytes of older output dropped" in data
    assert f"chatty done worker 0 pid {pid}".encode() in data
    assert b"chatty line 000399 " in data
    assert b"chatty line 000000 " not in data


def test_without_a_log_dir_logs_are_kept_in_a_temporary_logs_directory() -> None:
    with Cluster.start(app=APP, workers=1) as cluster:
        kept = cluster.log_dir
        httpx.get(cluster.router_url + "/hello", timeout=5.0)
    assert kept.parent.name == "scanproof-logs"
    assert "served /hello" in (kept / "0.log").read_text()


def test_an_app_that_fails_to_start_names_its_log_and_its_last_lines(tmp_path: Path) -> None:
    logs = tmp_path / "workers"
    with pytest.raises(InfrastructureError) as caught:
        Cluster.start(app="tests.apps.broken:app", workers=1, log_dir=logs)
    message = str(caught.value)
    assert f"log {logs / 'zygote.log'}" in message
    assert "broken app: this import always fails" in message
    assert "broken app" in (logs / "zygote.log").read_text()


def test_a_router_that_cannot_start_names_its_exit_code_and_log(tmp_path: Path) -> None:
    log = tmp_path / "workers" / "router.log"
    with pytest.raises(InfrastructureError) as caught:
        Router.start(["not-a-host-port"], log=log)
    message = str(caught.value)
    assert f"the router did not start (exit code 1, log {log})" in message
    assert "not-a-host-port" in message  # its last log lines follow


def test_a_router_keeps_a_log_it_was_given_and_removes_a_temporary_one(tmp_path: Path) -> None:
    given = tmp_path / "router.log"
    with Router.start(["127.0.0.1:9"], log=given) as kept, Router.start(["127.0.0.1:9"]) as temp:
        temporary = temp.log_path.parent
        assert temporary.name.startswith("scanproof-router-")
        assert temporary.is_dir()
    assert kept.log_path == given
    assert given.exists()  # the caller's: left where it was
    assert not temporary.exists()  # ours: gone with the router


def test_a_router_that_died_names_the_signal_and_its_log(tmp_path: Path) -> None:
    logs = tmp_path / "workers"
    with Cluster.start(app=APP, workers=1, log_dir=logs) as cluster:
        os.kill(cluster.router_pid, signal.SIGKILL)
        wait_until(lambda: not is_alive(cluster.router_pid), timeout=5.0, what="router death")
        with pytest.raises(InfrastructureError) as caught:
            cluster.routes()
    assert f"the router has exited (killed by signal 9, log {logs / 'router.log'})" in str(
        caught.value
    )


_HARNESS = """
import sys, time, httpx
from pathlib import Path
from harness import Cluster
with Cluster.start(app=sys.argv[1], workers=2, log_dir=Path(sys.argv[2])) as cluster:
    for _ in range(2):
        httpx.get(cluster.router_url + "/before-the-end", timeout=5.0)
    print("served", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_logs_survive_the_harness_being_interrupted_or_killed(
    tmp_path: Path, how: signal.Signals
) -> None:
    logs = tmp_path / "workers"
    with spawn(
        [sys.executable, "-c", _HARNESS, APP, str(logs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parents[2],
    ) as harness:
        try:
            assert harness.stdout is not None
            assert harness.stdout.readline() == b"served\n"
            harness.send_signal(how)
            harness.wait(20)
        finally:
            harness.kill()
    for index in (0, 1):
        text = (logs / f"{index}.log").read_text()
        assert f"=== scanproof: worker {index}, incarnation 1, pid " in text
        assert f"stdout: worker {index} pid " in text
        assert f"stderr: worker {index} pid " in text
