"""The headline bug (F1) end to end: the reference service on 4 workers behind the router.

One user starts a scan and polls its status through the router, exactly as the
production test did. With ``claimed-fix`` (the merged "fix"), polls that land on
a worker which never served ``/discover`` say ``not_found`` (that worker has no
Redis client); with ``sound`` no poll ever says ``not_found``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from harness import Cluster

pytestmark = [pytest.mark.processes, pytest.mark.real_redis]

AUTH = {"Authorization": "Bearer user-f1"}
API = "/api/v1/opportunities"


def _poll_one_scan(cluster: Cluster) -> tuple[str, list[tuple[str, str]]]:
    """Start a scan, poll until complete (at most 6 s); (discover worker, [(worker, status)])."""
    with httpx.Client(base_url=cluster.router_url, timeout=5.0) as client:
        started = client.post(f"{API}/discover", json={}, headers=AUTH)
        assert started.status_code == 200
        assert started.json()["status"] == "initiated"
        scan_id = started.json()["scan_id"]
        polls: list[tuple[str, str]] = []
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            response = client.get(f"{API}/status/{scan_id}", headers=AUTH)
            assert response.status_code == 200
            polls.append((response.headers["x-scanproof-worker"], response.json()["status"]))
            if polls[-1][1] == "complete" and len({w for w, _ in polls}) == 4:
                break
            time.sleep(0.05)  # the client's poll interval, not a wait for an event
    return started.headers["x-scanproof-worker"], polls


@pytest.fixture
def claimed_fix() -> Iterator[Cluster]:
    with Cluster.start(preset="claimed-fix", workers=4, redis="server") as cluster:
        yield cluster


@pytest.fixture
def sound() -> Iterator[Cluster]:
    with Cluster.start(preset="sound", workers=4, redis="server") as cluster:
        yield cluster


def test_claimed_fix_says_not_found_on_workers_that_never_served_discover(
    claimed_fix: Cluster,
) -> None:
    origin, polls = _poll_one_scan(claimed_fix)
    not_found_on = {worker for worker, status in polls if status == "not_found"}
    assert not_found_on, f"no poll said not_found: {polls}"
    assert origin not in not_found_on
    assert not_found_on == {"0", "1", "2", "3"} - {origin}
    assert {status for worker, status in polls if worker == origin} <= {"scanning", "complete"}


def test_sound_never_says_not_found(sound: Cluster) -> None:
    _, polls = _poll_one_scan(sound)
    assert len({worker for worker, _ in polls}) == 4
    assert [p for p in polls if p[1] == "not_found"] == []
    assert polls[-1][1] == "complete"
