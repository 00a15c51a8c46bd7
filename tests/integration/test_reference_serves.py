"""`uvicorn reference_impl.app:app` serves a scan against real Redis and fakeredis TCP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.cluster._proc import free_port

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/v1/opportunities"
_FAKE_SERVER = (
    "import sys, fakeredis\n"
    "server = fakeredis.TcpFakeServer(('127.0.0.1', int(sys.argv[1])), server_type='redis')\n"
    "server.serve_forever()\n"
)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode} before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # nothing to await: the child gives no readiness signal but the port
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def real_redis_url() -> Iterator[str]:
    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@pytest.fixture
def fakeredis_tcp_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _FAKE_SERVER, str(port)])
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def _serve_one_scan(redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REFIMPL_PRESET": "claimed-fix",
        "REFIMPL_TIME_SCALE": "0.005",
        "WORKER_ID": "1",
    }
    cmd = [sys.executable, "-m", "uvicorn", "reference_impl.app:app", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env
    )
    try:
        _wait_for_port(port, proc)
        auth = {"Authorization": "Bearer alice"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            meta = client.get(f"{PREFIX}/_meta").json()
            assert meta["preset"] == "claimed-fix"
            started = client.post(f"{PREFIX}/discover", headers=auth, json={})
            assert started.status_code == 200, started.text
            scan_id = started.json()["scan_id"]
            deadline = time.monotonic() + meta["scan_deadline_s"] + 5
            body = client.get(f"{PREFIX}/status/{scan_id}", headers=auth).json()
            while body["status"] != "complete" and time.monotonic() < deadline:
                assert body["status"] == "scanning", body
                time.sleep(0.02)  # polling a remote process: there is no event to await
                body = client.get(f"{PREFIX}/status/{scan_id}", headers=auth).json()
            assert body["status"] == "complete", body
            assert body["progress"]["strategies_completed"] == 14
            results = client.get(f"{PREFIX}/results/{scan_id}", headers=auth)
            assert results.status_code == 200, results.text
            assert results.json()["scan_id"] == scan_id
            assert {o["user_id"] for o in results.json()["opportunities"]} <= {"alice"}
    finally:
        _stop(proc)


@pytest.mark.processes
@pytest.mark.real_redis
def test_claimed_fix_serves_a_scan_against_real_redis(real_redis_url: str) -> None:
    _serve_one_scan(real_redis_url)


@pytest.mark.processes
def test_claimed_fix_serves_a_scan_against_fakeredis_tcp(fakeredis_tcp_url: str) -> None:
    _serve_one_scan(fakeredis_tcp_url)
