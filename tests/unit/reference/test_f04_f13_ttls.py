"""F4 and F13: keys that expire at different times make a live or finished scan vanish."""

from __future__ import annotations

import pytest

from reference_impl.timing import LOOKUP_TTL_S, RESULT_TTL_S
from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, config_id, configs, run

SCALE = 0.003  # lookups (pre-fix) live 0.9 s, a scan takes ~0.5 s


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F4"), ids=map(config_id, configs("F4"))
)
def test_F4_lookup_expires_before_result(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(
            preset=preset, overrides=overrides, time_scale=SCALE
        ) as c:
            await c.warm(1)
            started = c.now()
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            # past the pre-fix lookup TTL, well inside the result's 300 s after completion
            await c.wait_until(started + c.s(LOOKUP_TTL_S) + 0.05)
            on_b = await c.status(1, "alice", scan_id)
            results_b = await c.results(1, "alice", scan_id)
            symptom = on_b["status"] == "not_found" and results_b.status_code == 404
            assert symptom == expected, (on_b, results_b.status_code)
            assert await c.admin.keys("opportunity_scan_result:alice*"), (
                "the result must still be there"
            )

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F13"), ids=map(config_id, configs("F13"))
)
def test_F13_result_expiry_cliff(preset: str, overrides: dict[str, object], expected: bool) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(
            preset=preset, overrides=overrides, time_scale=SCALE
        ) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            completed = c.now()
            await c.wait_until(completed + 1.15 * c.s(RESULT_TTL_S))  # a slow poller
            on_b = await c.status(1, "alice", scan_id)
            results_b = await c.results(1, "alice", scan_id)
            symptom = on_b["status"] != "complete" or results_b.status_code != 200
            assert symptom == expected, (on_b, results_b.status_code)

    run(scenario())
