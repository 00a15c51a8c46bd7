"""Each fix of the merge document (and the late fix) changes what the facts say it changes."""

from __future__ import annotations

import pytest

from reference_impl.timing import LOOKUP_TTL_FIXED_S, LOOKUP_TTL_S
from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, run


@pytest.mark.parametrize("fixed", [True, False])
def test_result_index_fallback_answers_when_the_lookup_key_is_gone(fixed: bool) -> None:
    async def scenario() -> None:
        overrides = {"fix_result_index_fallback": fixed}
        async with InprocessFakeRedisCluster(preset="pre-fix", overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            await c.admin.delete(f"opportunity_scan_lookup:{scan_id}")
            on_b = await c.status(1, "alice", scan_id)
            assert on_b["status"] == ("scanning" if fixed else "not_found"), on_b

    run(scenario())


@pytest.mark.parametrize("fixed", [True, False])
def test_restored_lookup_maps_outlive_the_redis_keys(fixed: bool) -> None:
    async def scenario() -> None:
        overrides = {"fix_restore_lookup_maps_on_read": fixed}
        async with InprocessFakeRedisCluster(preset="claimed-fix", overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            assert (await c.status(1, "alice", scan_id))["status"] == "scanning"
            await c.admin.delete(f"opportunity_scan_lookup:{scan_id}")
            await c.admin.delete(f"opportunity_scan_result_index:{scan_id}")
            again = await c.status(1, "alice", scan_id)
            assert again["status"] == ("scanning" if fixed else "not_found"), again

    run(scenario())


@pytest.mark.parametrize("fixed", [True, False])
def test_triple_persistence_renews_lookups_with_every_result_write(fixed: bool) -> None:
    async def scenario() -> None:
        overrides = {"fix_triple_persistence": fixed}
        async with InprocessFakeRedisCluster(preset="pre-fix", overrides=overrides) as c:
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            slot = await c.slot_of(scan_id)
            result_ms = await c.admin.pttl(f"opportunity_scan_result:{slot}")
            lookup_ms = await c.admin.pttl(f"opportunity_scan_lookup:{scan_id}")
            latest_ms = await c.admin.pttl("opportunity_user_latest_scan:alice")
            # renewed at completion (within 100 ms of the result), or left to age since t=0
            assert (abs(result_ms - lookup_ms) < 100) == fixed, (result_ms, lookup_ms)
            assert (abs(result_ms - latest_ms) < 100) == fixed, (result_ms, latest_ms)

    run(scenario())


@pytest.mark.parametrize("fixed", [True, False])
def test_lookup_ttl_plus_300(fixed: bool) -> None:
    async def scenario() -> None:
        overrides = {"fix_lookup_ttl_plus_300": fixed}
        async with InprocessFakeRedisCluster(preset="pre-fix", overrides=overrides) as c:
            scan_id = await c.discover(0, "alice")
            ttl_ms = await c.admin.pttl(f"opportunity_scan_lookup:{scan_id}")
            wanted_ms = 1000 * c.s(LOOKUP_TTL_FIXED_S if fixed else LOOKUP_TTL_S)
            assert wanted_ms - 100 < ttl_ms <= wanted_ms, (ttl_ms, wanted_ms)

    run(scenario())


@pytest.mark.parametrize("fixed", [True, False])
def test_status_progress_metadata_on_complete(fixed: bool) -> None:
    async def scenario() -> None:
        overrides = {"fix_status_progress_metadata": fixed}
        async with InprocessFakeRedisCluster(preset="pre-fix", overrides=overrides) as c:
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            progress = done.get("progress")
            if fixed:
                assert progress is not None
                assert (progress["strategies_completed"], progress["total_strategies"]) == (14, 14)
            else:
                assert progress is None, done

    run(scenario())


@pytest.mark.parametrize("fixed", [True, False])
def test_read_path_client_reinit_closes_F1(fixed: bool) -> None:
    async def scenario() -> None:
        overrides = {"fix_read_path_client_reinit": fixed}
        async with InprocessFakeRedisCluster(preset="claimed-fix", overrides=overrides) as c:
            scan_id = await c.discover(0, "alice")
            on_b = await c.status(1, "alice", scan_id)
            assert on_b["status"] == ("scanning" if fixed else "not_found"), on_b

    run(scenario())
