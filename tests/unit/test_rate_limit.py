"""The client's bound on requests per second (--max-rps): a token bucket."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from harness.history.tables import HistoryWriter
from harness.run.client import RateLimit, ScanClient


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_get_evenly_spaced_slots() -> None:
    clock = _Clock()
    bucket = RateLimit(4.0, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]
    clock.now += 10.0  # idle: the bucket refills, but holds one token only
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.25]


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    clock = _Clock()
    bucket = RateLimit(10.0, burst=3, clock=clock)
    delays = [bucket.reserve() for _ in range(5)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:] == pytest.approx([0.1, 0.2])


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_positive_and_finite_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="requests per second"):
        RateLimit(rate)


def test_the_client_keeps_its_bound_across_concurrent_requests(tmp_path: object) -> None:
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return httpx.Response(200, json={"status": "scanning"})

    async def main() -> None:
        with HistoryWriter(tmp_path, proc="driver-0") as writer:  # type: ignore[arg-type]
            client = ScanClient(
                "http://svc", writer, max_rps=20.0, transport=httpx.MockTransport(answer)
            )
            async with client:
                await asyncio.gather(*(client.status("alice", f"s{i}") for i in range(11)))

    asyncio.run(main())
    assert len(seen) == 11
    # 11 requests at 20/s: the last one at least 10 intervals after the first
    assert seen[-1] - seen[0] >= 10 / 20.0 - 0.02
