"""F5-F7: progress a client sees as 0/0, or frozen at 0/N and then jumping."""

from __future__ import annotations

import hashlib

import pytest

from reference_impl.timing import STRATEGY_SETUP_DONE_AT_S
from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, config_id, configs, run

_NO_FILTERS = hashlib.sha1(b"{}").hexdigest()[:16]


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F5"), ids=map(config_id, configs("F5"))
)
def test_F5_complete_without_progress(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            assert ("progress" not in done) == expected, done
            if not expected:
                progress = done["progress"]
                assert (progress["strategies_completed"], progress["total_strategies"]) == (14, 14)

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F6"), ids=map(config_id, configs("F6"))
)
def test_F6_scanning_zero_of_zero(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            scan_id = await c.discover(0, "alice", {"force_refresh": True})
            totals: list[int] = []

            async def poll() -> str:
                body = await c.status(0, "alice", scan_id)
                if body["status"] == "scanning":
                    totals.append(body["progress"]["total_strategies"])
                return str(body["status"])

            final = await c.until(poll, lambda s: s == "complete", timeout_s=3)
            assert final == "complete"
            assert (0 in totals) == expected, sorted(set(totals))

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F7"), ids=map(config_id, configs("F7"))
)
def test_F7_progress_frozen_then_jumps(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    """Strategies finish over ~28 s (scaled); sound shows them one by one, legacy all at once."""

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(
            preset=preset, overrides=overrides, time_scale=0.005
        ) as c:
            started = c.now()
            scan_id = await c.discover(0, "alice")
            runtimes = c.service(0).timing.strategy_runtimes_s("alice", _NO_FILTERS, 14)
            midpoint = started + c.s(STRATEGY_SETUP_DONE_AT_S) + (min(runtimes) + max(runtimes)) / 2
            seen: dict[int, float] = {}

            async def poll() -> str:
                body = await c.status(0, "alice", scan_id)
                if body["status"] == "scanning":
                    seen.setdefault(body["progress"]["strategies_completed"], c.now())
                return str(body["status"])

            final = await c.until(poll, lambda s: s == "complete", timeout_s=4)
            assert final == "complete"
            first_progress = min((t for k, t in seen.items() if k > 0), default=c.now())
            # legacy: no progress until every strategy finished; sound: from the first one on
            symptom = first_progress > midpoint
            assert symptom == expected, (sorted(seen), first_progress - midpoint)

    run(scenario())
