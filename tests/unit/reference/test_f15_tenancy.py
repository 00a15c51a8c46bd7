"""F15a and F15b: another user's scan id gets the victim's status and results."""

from __future__ import annotations

import pytest

from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, config_id, configs, run

# F15a alone: under claimed-fix/late-fix the memory and index paths (F15b) would leak anyway.
F15A = [
    *[(p, o, e) for p, o, e in configs("F15a") if p in {"pre-fix", "sound"}],
    ("claimed-fix", {"memory_and_fallback_without_owner_check": False}, False),
    ("pre-fix", {"memory_and_fallback_without_owner_check": False}, True),
]


async def _leaks(c: InprocessFakeRedisCluster, worker: int, scan_id: str) -> bool:
    status = await c.status(worker, "mallory", scan_id)
    results = await c.results(worker, "mallory", scan_id)
    denied = status["status"] == "not_found" and results.status_code in {403, 404}
    return not denied


@pytest.mark.parametrize(("preset", "overrides", "expected"), F15A, ids=map(config_id, F15A))
def test_F15a_redis_lookup_without_owner_check(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            leak = await _leaks(c, 1, scan_id)  # worker 1 has nothing about alice in memory
            assert leak == expected

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F15b"), ids=map(config_id, configs("F15b"))
)
def test_F15b_memory_and_fallback_without_owner_check(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            on_origin = await _leaks(c, 0, scan_id)  # the worker holding alice's scan
            on_other = await _leaks(c, 1, scan_id)
            assert (on_origin or on_other) == expected, (on_origin, on_other)
            if expected:
                body = (await c.results(0, "mallory", scan_id)).json()
                assert body.get("user_id") == "alice"  # the victim's data, recognisably

    run(scenario())
