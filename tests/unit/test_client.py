"""The recording client writes what a user would need to know about every request."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from harness.history import schema as S
from harness.history.outcomes import completion_from_answer
from harness.history.tables import HistoryWriter, load_history
from harness.run.client import ScanClient, classify_exception, classify_response
from harness.targets.contract import Contract


def _inprocess_fake_service() -> FastAPI:
    """A tiny in-process stand-in for a scan service (unit tests only)."""
    app = FastAPI()

    @app.post("/api/v1/opportunities/discover")
    async def discover() -> dict[str, Any]:
        return {"success": True, "scan_id": "scan_a", "status": "initiated"}

    @app.get("/api/v1/opportunities/status/{scan_id}")
    async def status(scan_id: str) -> JSONResponse:
        if scan_id == "boom":
            return JSONResponse({"detail": "oops"}, status_code=500)
        body = {
            "status": "scanning",
            "scan_id": scan_id,
            "progress": {"strategies_completed": 3, "total_strategies": 14},
        }
        return JSONResponse(body, headers={"X-Scanproof-Worker": "2"})

    @app.get("/api/v1/opportunities/results/{scan_id}")
    async def results(scan_id: str) -> JSONResponse:
        body = {
            "scan_id": scan_id,
            "user_id": "alice",
            "opportunities": [{"scan_id": "scan_b", "user_id": "bob"}],
        }
        return JSONResponse(body)

    return app


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ConnectError("refused"), "fail"),
        (httpx.ConnectTimeout("slow connect"), "fail"),
        (httpx.PoolTimeout("pool"), "fail"),
        (httpx.ReadTimeout("slow answer"), "info"),
        (httpx.RemoteProtocolError("reset"), "info"),
        (httpx.ReadError("reset"), "info"),
    ],
)
def test_exception_table(exc: Exception, outcome: str) -> None:
    assert classify_exception(exc) == outcome


@pytest.mark.parametrize(
    ("code", "body", "outcome"),
    [
        (200, {}, "ok"),
        (404, {}, "ok"),
        (502, {"error": "worker_unavailable", "worker": 1}, "fail"),
        (502, {"error": "something else"}, "info"),
        (503, None, "info"),
        (503, {"error": "no_worker_available"}, "fail"),
    ],
)
def test_response_table(code: int, body: Any, outcome: str) -> None:
    assert classify_response(code, body) == outcome


ROUTER = {"X-Scanproof-Router": "local", "X-Scanproof-Worker": "1"}
SERVICE = {"X-Scanproof-Worker": "1"}


@pytest.mark.parametrize(
    ("code", "body", "headers", "outcome", "http_status"),
    [
        # the router's own answers: never sent, or sent and dropped (no service answer)
        (503, {"error": "no_worker_available"}, ROUTER, "fail", 503),
        (502, {"error": "worker_unavailable", "worker": 1}, ROUTER, "fail", 502),
        (502, {"error": "worker_closed", "worker": 1}, ROUTER, "info", 0),
        # the same words from the service itself are the service's 5xx answers
        (503, {"error": "no_worker_available"}, SERVICE, "info", 503),
        (502, {"error": "worker_closed"}, SERVICE, "info", 502),
    ],
)
def test_router_answers_are_never_taken_for_the_services(
    code: int, body: Any, headers: dict[str, str], outcome: str, http_status: int
) -> None:
    done = completion_from_answer("status", Contract(), code, body, headers=headers)
    assert (done.outcome, done.http_status, done.worker) == (outcome, http_status, 1)


def test_ops_record_worker_progress_and_ids(tmp_path: Path) -> None:
    async def scenario() -> None:
        with HistoryWriter(tmp_path, proc="c") as rec:
            transport = httpx.ASGITransport(app=_inprocess_fake_service())
            async with ScanClient("http://svc", rec, transport=transport) as client:
                scan_id = await client.discover("alice", filters={"b": 1, "a": 2})
                assert scan_id == "scan_a"
                await client.status("alice", scan_id)
                await client.results("alice", scan_id)
                await client.status("alice", "boom")

    asyncio.run(scenario())
    ops = load_history(tmp_path).ops.set_index(S.KIND, drop=False)
    disc = ops[ops[S.KIND] == "discover"].iloc[0]
    assert (disc[S.SCAN_ID], disc[S.FILTERS]) == ("scan_a", '{"a": 2, "b": 1}')
    status = ops[(ops[S.KIND] == "status") & (ops[S.SCAN_ID] == "scan_a")].iloc[0]
    assert (status[S.WORKER], status[S.BODY_STATUS]) == (2, "scanning")
    assert (status[S.COMPLETED], status[S.TOTAL], status[S.FOUND]) == (3, 14, -1)
    results = ops[ops[S.KIND] == "results"].iloc[0]
    assert results[S.BODY_SCAN_IDS] == "scan_a,scan_b"
    assert results[S.BODY_USER_IDS] == "alice,bob"
    boom = ops[ops[S.SCAN_ID] == "boom"].iloc[0]
    assert (boom[S.OUTCOME], boom[S.HTTP_STATUS]) == ("info", 500)


def test_refused_connection_is_fail_and_silent_server_is_info(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    async def scenario() -> None:
        accepted, release = asyncio.Event(), asyncio.Event()

        async def never_answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.set()
            await release.wait()
            w.close()
            await w.wait_closed()

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with HistoryWriter(tmp_path, proc="c") as rec:
            async with ScanClient(f"http://127.0.0.1:{closed_port}", rec) as client:
                await client.status("alice", "scan_a")
            async with ScanClient(f"http://127.0.0.1:{port}", rec, timeout_s=0.3) as client:
                await client.status("alice", "scan_b")
        assert accepted.is_set()
        release.set()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
    ops = load_history(tmp_path).ops.set_index(S.SCAN_ID)
    assert ops.loc["scan_a", S.OUTCOME] == "fail"
    assert "ConnectError" in ops.loc["scan_a", S.ERROR]
    assert ops.loc["scan_b", S.OUTCOME] == "info"
    assert "ReadTimeout" in ops.loc["scan_b", S.ERROR]


def test_the_router_and_the_recorders_agree_on_its_words() -> None:
    # harness.history stays standard library only (a gevent-patched locust imports it),
    # so it spells the router's header and error words itself: they must match.
    from harness.cluster.router import _pool
    from harness.history import outcomes

    assert _pool.LOCAL_HEADER.lower() == outcomes.ROUTER_HEADER
    assert {_pool.WORKER_UNAVAILABLE, _pool.NO_WORKER} == outcomes._ROUTER_NEVER_SENT
    assert _pool.WORKER_CLOSED == outcomes._ROUTER_DROPPED
