"""F1-F3: a worker that cannot reach Redis, or a write group cut short, hides a live scan."""

from __future__ import annotations

import pytest

from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, config_id, configs, run

DENY_LOOKUP_WRITES = (
    "ACL", "SETUSER", "default", "on", "nopass", "resetkeys", "~opportunity_scan_result:*",
    "~opportunity_scan_active:*", "~opportunity_worker_lease:*", "~opportunity_user_latest_scan:*",
    "+@all",
)  # fmt: skip
DENY_LOOKUP_ONLY = (
    "ACL", "SETUSER", "default", "on", "nopass", "resetkeys", "~opportunity_scan_result:*",
    "~opportunity_scan_active:*", "~opportunity_worker_lease:*",
    "~opportunity_scan_result_index:*", "~opportunity_user_latest_scan:*", "+@all",
)  # fmt: skip
ALLOW_ALL = ("ACL", "SETUSER", "default", "on", "nopass", "allkeys", "+@all")


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F1"), ids=map(config_id, configs("F1"))
)
def test_F1_reader_worker_without_client(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            scan_id = await c.discover(0, "alice")
            on_b = await c.status(1, "alice", scan_id)
            results_b = await c.results(1, "alice", scan_id)
            on_a = await c.status(0, "alice", scan_id)
            assert on_a["status"] == "scanning"  # the originating worker always knows
            symptom = on_b["status"] == "not_found" and results_b.status_code == 404
            assert symptom == expected, (on_b, results_b.status_code)

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F2"), ids=map(config_id, configs("F2"))
)
def test_F2_originating_worker_with_unhealthy_client(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            c.server.connected = False  # worker 0's first health check fails
            started = await c.discover_response(0, "alice")
            c.server.connected = True
            if not expected:
                # sound refuses to hand out a scan id it could not persist
                assert started.status_code == 503, started.text
                return
            assert started.status_code == 200
            scan_id = started.json()["scan_id"]
            on_b = await c.status(1, "alice", scan_id)
            assert on_b["status"] == "not_found", on_b

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F3"), ids=map(config_id, configs("F3"))
)
def test_F3_write_group_aborted_by_first_error(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    """Redis refuses lookup/index keys (NOPERM) while result writes succeed.

    fakeredis has no write-only ACL selectors, so lookup reads fail too: legacy
    swallows both and says not_found for a scan it acknowledged.
    """

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            await c.admin.execute_command(*DENY_LOOKUP_WRITES)
            started = await c.discover_response(0, "alice")
            if not expected:
                assert started.status_code == 503, started.text  # atomic: nothing half-written
                assert await c.admin.keys("opportunity_scan_result:alice*") == []
                return
            assert started.status_code == 200
            scan_id = started.json()["scan_id"]
            result_keys = await c.admin.keys("opportunity_scan_result:alice*")
            assert result_keys, "the result write should have landed"
            on_b = await c.status(1, "alice", scan_id)
            await c.admin.execute_command(*ALLOW_ALL)
            assert on_b["status"] == "not_found", on_b

    run(scenario())


@pytest.mark.parametrize(("preset", "expected"), [("claimed-fix", True), ("sound", False)])
def test_F3_lookup_read_error_skips_the_fallback_key(preset: str, expected: bool) -> None:
    """A failing lookup read aborts resolution before the result-index fallback is tried."""

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides={}) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            await c.admin.execute_command(*DENY_LOOKUP_ONLY)
            on_b = await c.status(1, "alice", scan_id)
            await c.admin.execute_command(*ALLOW_ALL)
            if expected:
                assert on_b["status"] == "not_found", on_b  # the index would have answered
            else:
                assert on_b["status"] == "http_503", on_b  # an honest 'cannot tell', retried later

    run(scenario())
