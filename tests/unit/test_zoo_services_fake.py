"""The zoo services, each on its own, in-process against fakeredis (a fake: no processes).

Two ``build()`` calls of one service stand for two worker processes sharing one
Redis. Every answer is also read through the service's contract (``tests/zoo/
<module>.toml``) the way the recording client reads it, so a contract that stops
describing its service fails here, before any cluster starts. Time is a fake
clock (:func:`tests.zoo._common.set_clock`); Redis TTLs are checked as TTLs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
from fastapi import FastAPI

from harness.history.outcomes import completion_from_answer
from harness.history.writer import Completion
from harness.targets.contract import Contract, load_contract
from tests.zoo import _common as C
from tests.zoo import batches, crawls, jobs, reports, tasks

ZOO = Path(__file__).resolve().parents[1] / "zoo"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    C.set_clock(fake)
    yield fake
    C.set_clock(time.time)


@pytest.fixture
def server() -> Iterator[fakeredis.FakeServer]:
    fake = fakeredis.FakeServer()
    C.use_redis(fakeredis.FakeAsyncRedis(server=fake, decode_responses=True))
    yield fake
    C.use_redis(None)


class Worker:
    """One app in-process, read through its contract like the recording client."""

    def __init__(self, app: FastAPI, contract: Contract) -> None:
        self.contract = contract
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://zoo.test"
        )

    async def call(
        self, kind: str, tenant: str, scan_id: str = "", symbol: str | None = None
    ) -> tuple[httpx.Response, Completion]:
        c = self.contract
        headers = c.auth(tenant)
        if kind == "discover":
            filters = {"asset": symbol} if symbol else None
            body = c.discover_json(filters, tenant=tenant)
            response = await self.http.request(
                c.discover_method, c.discover_path, json=body, headers=headers
            )
        else:
            path = c.status_url(scan_id) if kind == "status" else c.results_url(scan_id)
            response = await self.http.get(path, headers=headers)
        done = completion_from_answer(
            kind,  # type: ignore[arg-type]
            c,
            response.status_code,
            response.json(),
            headers=response.headers,
        )
        return response, done

    async def start(self, tenant: str, symbol: str | None = None) -> str:
        _, done = await self.call("discover", tenant, symbol=symbol)
        assert done.scan_id, "the contract could not read the new scan's id"
        return done.scan_id

    async def state(self, tenant: str, scan_id: str, kind: str = "status") -> str:
        return (await self.call(kind, tenant, scan_id))[1].body_status


def _run(body: Callable[[], Awaitable[None]], *workers: Worker) -> None:
    """Run one test's async ``body`` on a fresh loop, then close the workers' clients."""

    async def main() -> None:
        try:
            await body()
        finally:
            for w in workers:
                await w.http.aclose()

    asyncio.run(main())


@pytest.fixture
def pair(request: pytest.FixtureRequest, server: Any) -> tuple[Worker, Worker]:
    """Two workers of ``(module, bug)`` (indirect parametrization) sharing one Redis."""
    module, bug = request.param
    contract = load_contract(ZOO / f"{module.__name__.rsplit('.', 1)[1]}.toml")
    return Worker(module.build(bug), contract), Worker(module.build(bug), contract)


def _variants(module: Any, bug: str) -> list[Any]:
    return [
        pytest.param((module, ""), False, id="correct"),
        pytest.param((module, bug), True, id=bug),
    ]


# -- jobs: 201 + Location, 404 for unknown jobs ---------------------------------------


def test_jobs_lifecycle_read_through_the_contract(clock: FakeClock, server: Any) -> None:
    a = Worker(jobs.app, load_contract(ZOO / "jobs.toml"))

    async def body() -> None:
        response, done = await a.call("discover", "alice", symbol="BTC")
        assert response.status_code == 201
        assert "id" not in response.json()["job"]
        assert response.headers["location"] == f"/jobs/{done.scan_id}"
        job = done.scan_id
        assert (await a.call("status", "alice", job))[1].raw_status == "queued"
        clock.t += 0.5
        assert await a.state("alice", job) == "scanning"
        assert await a.state("alice", job, "results") == "scanning"  # 202
        clock.t += 2.0
        response, done = await a.call("results", "alice", job)
        assert (done.body_status, done.body_scan_ids) == ("complete", job)
        assert response.json()["items"] == [{"symbol": "BTC", "score": 1.0}]
        assert await a.state("bob", job) == "not_found"  # 404, not yours
        assert await a.state("alice", "job_nope", "results") == "not_found"
        ttl = await C.redis().pttl(f"jobs:{job}")
        assert ttl / 1000 >= 2.0 + jobs.RETENTION_S  # outlives the scan plus the promise

    _run(body, a)


@pytest.mark.parametrize(("pair", "buggy"), _variants(jobs, "per_process"), indirect=["pair"])
def test_jobs_a_second_worker_knows_the_job_unless_per_process(
    clock: FakeClock, pair: tuple[Worker, Worker], buggy: bool
) -> None:
    async def body() -> None:
        a, b = pair
        job = await a.start("alice")
        assert await b.state("alice", job) == ("not_found" if buggy else "scanning")

    _run(body, *pair)


# -- tasks: slow, nested progress, a stale per-worker cache -----------------------------


@pytest.mark.parametrize(("pair", "buggy"), _variants(tasks, "stale_cache"), indirect=["pair"])
def test_tasks_a_worker_that_saw_it_working_says_ok_unless_its_cache_is_stale(
    clock: FakeClock, pair: tuple[Worker, Worker], buggy: bool
) -> None:
    async def body() -> None:
        a, b = pair
        task = await a.start("alice", symbol="ETH")
        clock.t += 7.9  # a task runs 8-10 s
        _, seen = await b.call("status", "alice", task)
        assert (seen.body_status, seen.total) == ("scanning", tasks.STEPS)
        assert 7 <= seen.completed < tasks.STEPS
        clock.t += 2.2
        _, done = await a.call("status", "alice", task)
        assert (done.body_status, done.completed) == ("complete", tasks.STEPS)
        clock.t += 0.1  # b read it 2.3 s ago: inside its cache lifetime
        _, again = await b.call("status", "alice", task)
        assert again.body_status == ("scanning" if buggy else "complete")
        assert again.completed == (seen.completed if buggy else tasks.STEPS)
        assert await a.state("alice", "task_nope") == "not_found"  # 200 "missing"

    _run(body, *pair)


# -- reports: flat fields, a short TTL, an owner check ---------------------------------


@pytest.mark.parametrize(("pair", "buggy"), _variants(reports, "short_ttl"), indirect=["pair"])
def test_reports_records_outlive_the_promised_retention_unless_short_ttl(
    clock: FakeClock, pair: tuple[Worker, Worker], buggy: bool
) -> None:
    async def body() -> None:
        a, _ = pair
        report = await a.start("alice", symbol="SOL")
        ttl_s = await C.redis().pttl(f"reports:{report}") / 1000
        assert (ttl_s < 2.0 + reports.RETENTION_S) is buggy
        clock.t += 2.1
        assert await a.state("alice", report) == "complete"
        await C.redis().delete(f"reports:{report}")  # what the TTL does
        assert await a.state("alice", report) == "not_found"  # 200 {"state": "unknown"}
        assert await a.state("alice", report, "results") == "not_found"  # 404

    _run(body, *pair)


@pytest.mark.parametrize(("pair", "buggy"), _variants(reports, "no_owner_check"), indirect=["pair"])
def test_reports_refuse_other_users_unless_no_owner_check(
    clock: FakeClock, pair: tuple[Worker, Worker], buggy: bool
) -> None:
    async def body() -> None:
        a, b = pair
        report = await a.start("alice")
        clock.t += 2.1
        response, done = await b.call("results", "mallory", report)
        if buggy:
            assert response.status_code == 200
            assert done.body_user_ids == "alice"
        else:
            assert (response.status_code, done.body_status) == (403, "refused")

    _run(body, *pair)


# -- crawls: an asyncio task, a lease, X-Served-By ---------------------------------------


@pytest.fixture
def quick_crawls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawls, "SCAN_S", (0.04, 0.04))
    monkeypatch.setenv("WORKER_ID", "3")


async def _settle() -> None:
    """Wait until every crawl task of this process has ended (bounded)."""
    async with asyncio.timeout(5):
        while crawls._tasks:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("bug", "flaky", "final", "worker_dies"),
    [
        ("", False, "complete", False),
        ("", True, "failed", False),
        ("", False, "failed", True),  # its worker died: the lease lapses
        ("dies", True, "scanning", False),
        ("dies", False, "scanning", True),
        ("vanishes", True, "not_found", False),
    ],
    ids=["correct", "correct-flaky", "correct-worker-died", "dies", "dies-worker-died", "vanishes"],
)
def test_crawls_end_in_a_terminal_phase_unless_the_task_dies_silently(
    server: Any,
    quick_crawls: None,
    monkeypatch: pytest.MonkeyPatch,
    bug: str,
    flaky: bool,
    final: str,
    worker_dies: bool,
) -> None:
    monkeypatch.setattr(crawls, "FLAKY_EVERY", 1 if flaky else 1 << 40)
    w = Worker(crawls.build(bug), load_contract(ZOO / "crawls.toml"))

    async def body() -> None:
        response, done = await w.call("discover", "alice", symbol="ADA")
        assert (response.status_code, done.worker) == (202, 3)  # X-Served-By
        crawl = done.scan_id
        if worker_dies:
            for task in list(crawls._tasks):
                task.cancel()
        await _settle()
        await C.redis().delete(f"crawls:{crawl}:alive")  # what the lease's TTL does
        _, done = await w.call("status", "alice", crawl)
        assert done.body_status == final
        if final == "complete":
            assert (done.completed, done.total) == (crawls.STEPS, crawls.STEPS)
            assert await w.state("alice", crawl, "results") == "complete"
        assert await w.state("bob", crawl) == ("not_found" if final != "not_found" else final)

    _run(body, w)


# -- batches: 410 gone, 404 not yours, one slot per (user, ticker) ---------------------


@pytest.mark.parametrize(("pair", "buggy"), _variants(batches, "shared_slot"), indirect=["pair"])
def test_batches_answer_for_their_own_batch_unless_the_slot_is_shared(
    clock: FakeClock, pair: tuple[Worker, Worker], buggy: bool
) -> None:
    async def body() -> None:
        a, b = pair
        first = await a.start("alice", symbol="BTC")
        clock.t += 10.5
        assert await b.state("alice", first) == "complete"
        second = await b.start("alice", symbol="BTC")
        _, done = await a.call("status", "alice", first)
        assert done.body_scan_ids == (second if buggy else first)
        assert done.body_status == ("scanning" if buggy else "complete")
        assert done.body_user_ids == "alice"
        assert await a.state("mallory", first) == "refused"  # 404: not yours
        assert await a.state("alice", "batch_nope") == "not_found"  # 410: gone

    _run(body, *pair)


def test_a_redis_outage_answers_503_not_a_wrong_state(server: Any) -> None:
    w = Worker(reports.app, load_contract(ZOO / "reports.toml"))

    async def body() -> None:
        server.connected = False
        response, done = await w.call("status", "alice", "rep_1")
        assert (response.status_code, done.outcome, done.body_status) == (503, "info", "")

    _run(body, w)


def test_an_unknown_bug_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="valid: per_process"):
        jobs.build("per-process")
