"""The virtual-time loop the in-process fake runs on (unit tests of the test tool)."""

from __future__ import annotations

import asyncio

import fakeredis

from .virtual_time import current_clock, run_virtual


def test_an_hour_of_sleep_takes_no_real_time_and_reads_as_an_hour() -> None:
    async def nap() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        clock = current_clock()
        start, wall = loop.time(), clock.wall()
        await asyncio.sleep(3600)
        return loop.time() - start, clock.wall() - wall

    assert run_virtual(nap(), timeout_s=7200) == (3600.0, 3600.0)


def test_fakeredis_ttls_expire_on_the_virtual_clock() -> None:
    async def scenario() -> tuple[str | None, str | None]:
        redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        await redis.set("k", "v", px=300_000)  # five minutes
        await asyncio.sleep(299)
        before = await redis.get("k")
        await asyncio.sleep(2)
        after = await redis.get("k")
        await redis.aclose()
        return before, after

    assert run_virtual(scenario()) == ("v", None)


def test_a_virtual_timeout_fires_at_its_virtual_instant() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await asyncio.wait_for(forever(), 42)
        except TimeoutError:
            return loop.time() - start
        raise AssertionError("no timeout")

    assert run_virtual(scenario()) == 42.0
