"""F8, F9, F12: per-worker caches and per-(user, filters) keys shared between scans."""

from __future__ import annotations

import pytest

from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, config_id, configs, run


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F8"), ids=map(config_id, configs("F8"))
)
def test_F8_stale_read_through_cache(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            mid = await c.wait_status(1, "alice", scan_id, {"scanning"}, timeout_s=1)
            assert mid["status"] == "scanning"  # worker 1 has now seen a partial snapshot
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            on_b = await c.status(1, "alice", scan_id)
            results_b = await c.results(1, "alice", scan_id)
            symptom = on_b["status"] == "scanning" and results_b.status_code == 202
            assert symptom == expected, (on_b, results_b.status_code)

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F9"), ids=map(config_id, configs("F9"))
)
def test_F9_one_result_slot_per_filters(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            first = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", first, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            await c.wait_idle(0)
            second = await c.discover(0, "alice", {"force_refresh": True})
            assert second != first
            again = await c.status(0, "alice", first)
            results = await c.results(0, "alice", first)
            symptom = again["scan_id"] != first or results.json().get("scan_id") != first
            assert symptom == expected, (first, again, results.status_code)
            if not expected:
                assert again["status"] == "complete"
                assert results.status_code == 200
                assert {o["scan_id"] for o in results.json()["opportunities"]} <= {first}

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F12"), ids=map(config_id, configs("F12"))
)
def test_F12_old_cleanup_deletes_new_active_flag(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    """Needs a fault: the newer scan's result key is evicted while it runs."""

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(
            preset=preset, overrides=overrides, workers=3, time_scale=0.005
        ) as c:
            await c.warm(2)
            started = c.now()
            old = await c.discover(0, "alice", {"simulate": {"strategies": 1}})
            await c.wait_until(started + c.s(60))  # the old scan is well under way
            new = await c.discover(1, "alice", {"force_refresh": True})
            done = await c.wait_status(0, "alice", old, {"complete"}, timeout_s=3)
            assert done["status"] in {"complete", "scanning"}  # under F9 'old' may show 'new'
            await c.wait_idle(0)
            slot = await c.slot_of(new)
            assert await c.admin.delete(f"opportunity_scan_result:{slot}") == 1  # eviction
            on_c = await c.status(2, "alice", new)
            assert c.service(1).has_local_task(slot), "the new scan must still be running"
            symptom = on_c["status"] in {"not_found", "failed"}
            assert symptom == expected, on_c

    run(scenario())


@pytest.mark.parametrize("f8", [True, False], ids=["F8", "no-F8"])
def test_F8_a_stale_scanning_answer_outlives_the_result(f8: bool) -> None:
    """Why late-fix may answer not_found within retention of its own ``scanning``.

    A worker that cached a partial entry says ``scanning`` until that entry's 300 s
    run out, after the scan completed; the result expires 300 s after completion,
    and a worker that reads Redis then says not_found. A client sees ``scanning``,
    then not_found well inside retention: a live scan vanished, by the service's
    own word. tests/integration/test_matrix.py switches F8 off to measure F4 alone.
    """

    async def scenario() -> None:
        overrides = {"per_worker_read_through_cache": f8}
        async with InprocessFakeRedisCluster(
            preset="late-fix", overrides=overrides, workers=3
        ) as c:
            await c.warm(1)
            await c.warm(2)
            scan_id = await c.discover(0, "alice")
            mid = await c.wait_status(1, "alice", scan_id, {"scanning"}, timeout_s=1)
            assert mid["status"] == "scanning"  # worker 1 may cache this partial entry
            cached_at = c.now()
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            completed_by = c.now()
            ttl = c.s(300)
            await c.wait_until(cached_at + ttl - c.s(5))
            said = (await c.status(1, "alice", scan_id))["status"]
            said_at = c.now()
            await c.wait_until(completed_by + ttl + c.s(5))
            gone = (await c.status(2, "alice", scan_id))["status"]
            assert c.now() - said_at < ttl  # inside the retention that `said` promised
            assert (said, gone) == (("scanning" if f8 else "complete"), "not_found")

    run(scenario())
