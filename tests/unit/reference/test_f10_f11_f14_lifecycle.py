"""F10, F11, F14: scans that end, die or lose their state without a terminal answer."""

from __future__ import annotations

import asyncio

import pytest

from reference_impl.payload import StoredEntry
from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, config_id, configs, run

TERMINAL = {"complete", "failed"}


@pytest.mark.parametrize("trigger", ["no_strategies", "strategy_raises"])
@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F10"), ids=map(config_id, configs("F10"))
)
def test_F10_early_exit_never_terminal(
    preset: str, overrides: dict[str, object], expected: bool, trigger: str
) -> None:
    body = (
        {"simulate": {"strategies": 0}}
        if trigger == "no_strategies"
        else {"simulate": {"fail_strategy": 3}}
    )

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            scan_id = await c.discover(0, "alice", body)
            deadline_s = float(
                (await c.clients[0].get("/api/v1/opportunities/_meta")).json()["scan_deadline_s"]
            )
            final = await c.wait_status(0, "alice", scan_id, TERMINAL, timeout_s=deadline_s)
            symptom = final["status"] == "scanning"
            assert symptom == expected, final
            if not expected:
                assert final["status"] == "failed", final
                assert final["error"], final

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F11"), ids=map(config_id, configs("F11"))
)
def test_F11_scan_dies_with_its_worker(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            mid = await c.wait_status(1, "alice", scan_id, {"scanning"}, timeout_s=1)
            assert mid["status"] == "scanning"
            await c.service(0).simulate_kill()
            meta = (await c.clients[1].get("/api/v1/opportunities/_meta")).json()
            final = await c.wait_status(
                1, "alice", scan_id, TERMINAL, timeout_s=meta["scan_deadline_s"]
            )
            symptom = final["status"] not in TERMINAL
            assert symptom == expected, final

    run(scenario())


def test_sound_never_resurrects_a_lapsed_lease() -> None:
    """A Redis stall longer than a lease: readers say failed, and failed it stays.

    Before the fix, the next scan's start write (or the heartbeat) set the lease
    again with the same token, so the scan read scanning again and went on to
    complete: failed -> scanning -> complete (status_regression on ``sound``).
    """

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset="sound") as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            mid = await c.wait_status(1, "alice", scan_id, {"scanning"}, timeout_s=1)
            assert mid["status"] == "scanning"
            liveness = c.service(0).liveness
            assert liveness is not None
            token = liveness.token
            await c.admin.delete("opportunity_worker_lease:w0")  # lapsed during a stall
            assert (await c.status(1, "alice", scan_id))["status"] == "failed"
            assert (await c.status(0, "alice", scan_id))["status"] == "failed"  # owner too
            await c.discover(0, "bob")  # the same worker starts another scan
            assert (await c.status(1, "alice", scan_id))["status"] == "failed"
            rotated = await c.until(
                lambda: asyncio.sleep(0, liveness.token), lambda t: t != token, timeout_s=2
            )
            assert rotated != token, "the heartbeat never noticed the lapse"
            await c.wait_idle(0)  # alice's scan was abandoned, bob's finished or failed
            final = await c.status(1, "alice", scan_id)
            assert final["status"] == "failed", final

    run(scenario())


def test_sound_scan_writes_nothing_once_its_lease_expires_before_the_heartbeat() -> None:
    """The lease expires before the owner's next beat (a starved event loop): readers
    say failed at once, so the owner's next write must not land.

    Before the fenced write, the owner kept writing under its old token until its
    heartbeat noticed the lapse, and a scan that finished in that window read failed
    and then complete (status_regression on ``sound`` under load).
    """

    async def scenario() -> None:
        # 0.05: the lease (1.5 s) expires long before the first strategy ends (>= 6.2 s)
        async with InprocessFakeRedisCluster(preset="sound", time_scale=0.05) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            assert (await c.status(1, "alice", scan_id))["status"] == "scanning"
            liveness = c.service(0).liveness
            assert liveness is not None
            token = liveness.token
            await liveness.stop()  # its next beat never comes; the lease just expires
            lapsed = await c.wait_status(1, "alice", scan_id, TERMINAL, timeout_s=c.s(60))
            assert lapsed["status"] == "failed", lapsed
            await c.wait_idle(0, timeout_s=c.s(400))
            assert liveness.token == token, "the heartbeat ran: this test needs it not to"
            for worker in (0, 1):
                final = await c.status(worker, "alice", scan_id)
                assert final["status"] == "failed", final
                assert (await c.results(worker, "alice", scan_id)).status_code == 410

    run(scenario())


def test_sound_reader_does_not_fail_a_scan_that_finished_before_its_lease_lapsed() -> None:
    """A reader holding a partial entry read just before the scan completed, that
    then finds the lease gone (it lapsed after completion), answers complete."""

    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset="sound", time_scale=0.05) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            slot = await c.slot_of(scan_id)
            stale = StoredEntry.from_json(await c.admin.get(f"opportunity_scan_result:{slot}"))
            assert stale.partial
            done = await c.wait_status(0, "alice", scan_id, TERMINAL, timeout_s=c.s(400))
            assert done["status"] == "complete", done
            await c.admin.delete("opportunity_worker_lease:w0")  # lapses after the end
            reader = c.service(1)
            settled = await reader.settle_partial(slot, stale, await reader.read_client())
            assert settled is not None, "a finished scan was answered as abandoned"
            assert settled.payload.status == "complete"
            await c.admin.delete(f"opportunity_scan_result:{slot}")  # and now truly gone
            assert await reader.settle_partial(slot, stale, await reader.read_client()) is None

    run(scenario())


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"), configs("F14"), ids=map(config_id, configs("F14"))
)
def test_F14_evicted_result_reads_not_found(
    preset: str, overrides: dict[str, object], expected: bool
) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, overrides=overrides) as c:
            await c.warm(1)
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            slot = await c.slot_of(scan_id)
            assert await c.admin.delete(f"opportunity_scan_result:{slot}") == 1  # eviction
            on_b = await c.status(1, "alice", scan_id)
            results_b = await c.results(1, "alice", scan_id)
            symptom = on_b["status"] == "not_found" or results_b.status_code == 404
            assert symptom == expected, (on_b, results_b.status_code)

    run(scenario())
