"""Bad input gets a clear JSON answer, never a 500: unknown ids, other users, bodies, auth."""

from __future__ import annotations

import pytest

from reference_impl.app import PREFIX
from reference_impl.flags import PRESETS
from tests.unit.reference.inprocess_fake import InprocessFakeRedisCluster, run

UNKNOWN = "scan_" + "0" * 32


@pytest.mark.parametrize("preset", list(PRESETS))
def test_unknown_scan_ids_are_not_found(preset: str) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset) as c:
            await c.warm(0)
            for scan_id in (UNKNOWN, "not-a-scan-id", "scan_..:*x"):
                status = await c.status(0, "alice", scan_id)
                assert status["status"] == "not_found", status
                results = await c.results(0, "alice", scan_id)
                assert results.status_code == 404, results.text
                assert results.json()["success"] is False

    run(scenario())


def test_other_users_scan_ids_are_not_found_under_sound() -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset="sound") as c:
            scan_id = await c.discover(0, "alice")
            done = await c.wait_status(0, "alice", scan_id, {"complete"}, timeout_s=3)
            assert done["status"] == "complete"
            for worker in (0, 1):
                assert (await c.status(worker, "mallory", scan_id))["status"] == "not_found"
                assert (await c.results(worker, "mallory", scan_id)).status_code == 404

    run(scenario())


BAD_BODIES = [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"filter": {}}', "unknown body field"),
    (b'{"filters": [1]}', "filters="),
    (b'{"force_refresh": "yes"}', "force_refresh="),
    (b'{"simulate": {"strategies": -1}}', "simulate.strategies="),
    (b'{"simulate": {"strategies": 3, "fail_strategy": 7}}', "simulate.fail_strategy="),
    (b'{"simulate": {"turbo": true}}', "simulate="),
]


@pytest.mark.parametrize(("raw", "message"), BAD_BODIES, ids=[m for _, m in BAD_BODIES])
def test_malformed_discover_bodies_get_422_naming_the_field(raw: bytes, message: str) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset="pre-fix", workers=1) as c:
            response = await c.clients[0].post(
                f"{PREFIX}/discover",
                headers={**c.auth("alice"), "content-type": "application/json"},
                content=raw,
            )
            assert response.status_code == 422, response.text
            assert message in response.json()["error"]

    run(scenario())


AUTH_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic YWxpY2U6cHc="},
    {"Authorization": "Bearer alice bob"},
    {"Authorization": "Bearer " + "x" * 200},
    {"Authorization": "Bearer al:ice"},
]


@pytest.mark.parametrize("preset", ["pre-fix", "sound"])
@pytest.mark.parametrize("headers", AUTH_HEADERS, ids=range(len(AUTH_HEADERS)))
def test_missing_or_malformed_auth_is_401_json(preset: str, headers: dict[str, str]) -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset=preset, workers=1) as c:
            client = c.clients[0]
            for response in (
                await client.post(f"{PREFIX}/discover", headers=headers, json={}),
                await client.get(f"{PREFIX}/status/{UNKNOWN}", headers=headers),
                await client.get(f"{PREFIX}/results/{UNKNOWN}", headers=headers),
            ):
                assert response.status_code == 401, response.text
                assert "Authorization" in response.json()["error"]

    run(scenario())


def test_meta_describes_the_running_configuration() -> None:
    async def scenario() -> None:
        async with InprocessFakeRedisCluster(preset="claimed-fix", time_scale=0.01, workers=1) as c:
            meta = (await c.clients[0].get(f"{PREFIX}/_meta")).json()
            assert meta["preset"] == "claimed-fix"
            assert meta["flags"]["fix_ownership_validation"] is True
            assert meta["total_strategies"] == 14
            assert meta["retention_s"] == pytest.approx(3.0)
            assert meta["lookup_ttl_s"] == pytest.approx(6.0)
            assert meta["scan_budget_s"] == pytest.approx(1.5)
            assert meta["expected_scan_s"] < meta["scan_deadline_s"]
            assert meta["retry_policy"]["retries"] == 10
            assert meta["worker_id"] == "w0"
            assert "F1" in meta["open_mechanisms"]
            assert "F4" not in meta["open_mechanisms"]

    run(scenario())
