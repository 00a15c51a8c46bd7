"""An in-process fake of a multi-worker deployment, for unit tests only.

Several ``create_app`` instances (one per "worker", each with its own memory and
client) share ONE in-process ``fakeredis.FakeServer`` and are driven through
``httpx.ASGITransport``, on virtual time (:mod:`.virtual_time`): the service,
fakeredis's TTLs and the tests' own waits read one clock that jumps from timer
to timer, so a scenario is deterministic and takes no real time however loaded
the machine is. Real processes and real Redis are the integration tests'
job; this fake reproduces what differs per worker (memory, client, tasks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import fakeredis
import httpx

from reference_impl.app import PREFIX, create_app
from reference_impl.flags import PRESETS, Flags, open_mechanisms, resolve_flags
from reference_impl.service import ScanService

from .virtual_time import current_clock, run_virtual

T = TypeVar("T")
SECOND = 1.0


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 20.0) -> T:
    """Run one test scenario on a fresh virtual-time loop, bounded in (virtual) time."""
    return run_virtual(coro, timeout_s)


def configs(fid: str) -> list[tuple[str, dict[str, object], bool]]:
    """(preset, overrides, symptom expected) for every preset plus sound + the F's bug flag."""
    rows = [(name, {}, fid in open_mechanisms(flags)) for name, flags in PRESETS.items()]
    bug = next(
        name
        for name in Flags.__dataclass_fields__
        if Flags.__dataclass_fields__[name].metadata["kind"] == "bug"
        and Flags.__dataclass_fields__[name].metadata["mechanisms"] == fid
    )
    rows.append(("sound", {bug: True}, True))
    return rows


def config_id(row: tuple[str, dict[str, object], bool]) -> str:
    preset, overrides, _ = row
    return preset + "".join(f"+{k}={v}" for k, v in overrides.items())


class InprocessFakeRedisCluster:
    """N in-process workers sharing one in-process fake Redis (use ``async with``)."""

    def __init__(
        self,
        *,
        preset: str,
        overrides: Mapping[str, object] | None = None,
        workers: int = 2,
        time_scale: float = 0.005,
        seed: int = 0,
    ) -> None:
        self.preset = preset
        self.flags = resolve_flags(preset, overrides)
        self.time_scale = time_scale
        self.server = fakeredis.FakeServer()
        self.admin = fakeredis.FakeAsyncRedis(server=self.server, decode_responses=True)
        self.apps = [
            create_app(
                preset=preset,
                flags=self.flags,
                time_scale=time_scale,
                seed=seed,
                worker_id=f"w{i}",
                redis_factory=self._factory,
                clock=current_clock(),
            )
            for i in range(workers)
        ]
        self.clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://worker")
            for a in self.apps
        ]

    def _factory(self, **kwargs: Any) -> fakeredis.FakeAsyncRedis:
        return fakeredis.FakeAsyncRedis(server=self.server, decode_responses=True, **kwargs)

    async def __aenter__(self) -> InprocessFakeRedisCluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for app in self.apps:
            await app.state.worker.aclose()
        for client in self.clients:
            await client.aclose()
        await self.admin.aclose()

    def s(self, real_seconds: float) -> float:
        return real_seconds * self.time_scale

    def service(self, worker: int) -> ScanService:
        service: ScanService = self.apps[worker].state.worker.service()
        return service

    @staticmethod
    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {user}"}

    async def discover_response(
        self, worker: int, user: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        return await self.clients[worker].post(
            f"{PREFIX}/discover", headers=self.auth(user), json=dict(body or {})
        )

    async def discover(self, worker: int, user: str, body: Mapping[str, Any] | None = None) -> str:
        response = await self.discover_response(worker, user, body)
        assert response.status_code == 200, response.text
        scan_id: str = response.json()["scan_id"]
        return scan_id

    async def warm(self, worker: int) -> None:
        """Serve one /discover on ``worker`` (initialises its client, as in production)."""
        await self.discover(worker, f"warmup{worker}", {"simulate": {"strategies": 0}})

    async def status(self, worker: int, user: str, scan_id: str) -> dict[str, Any]:
        response = await self.clients[worker].get(
            f"{PREFIX}/status/{scan_id}", headers=self.auth(user)
        )
        assert response.status_code in (200, 503), response.text
        body: dict[str, Any] = response.json()
        body.setdefault("status", f"http_{response.status_code}")
        return body

    async def results(self, worker: int, user: str, scan_id: str) -> httpx.Response:
        return await self.clients[worker].get(
            f"{PREFIX}/results/{scan_id}", headers=self.auth(user)
        )

    async def until(
        self,
        probe: Callable[[], Awaitable[T]],
        done: Callable[[T], bool],
        timeout_s: float,
        every_s: float = 0.005,
    ) -> T:
        """Poll ``probe`` until ``done(value)``; the last value if the deadline passes."""
        deadline = self.now() + timeout_s
        value = await probe()
        while not done(value) and self.now() < deadline:
            await asyncio.sleep(every_s)
            value = await probe()
        return value

    async def wait_status(
        self, worker: int, user: str, scan_id: str, wanted: set[str], timeout_s: float
    ) -> dict[str, Any]:
        return await self.until(
            lambda: self.status(worker, user, scan_id), lambda b: b["status"] in wanted, timeout_s
        )

    async def wait_until(self, instant: float) -> None:
        """Let scaled time pass until ``instant`` (:meth:`now`): TTLs expire only with time."""
        await asyncio.sleep(max(0.0, instant - self.now()))

    @staticmethod
    def now() -> float:
        """The (virtual) monotonic time the service and fakeredis also read."""
        return asyncio.get_running_loop().time()

    async def wait_idle(self, worker: int, timeout_s: float = 2.0) -> None:
        """Until ``worker`` runs no scan task (its cleanup after the final write is done)."""

        async def busy() -> bool:
            return any(not r.task.done() for r in self.service(worker)._tasks.values())

        assert not await self.until(busy, lambda b: not b, timeout_s), f"worker {worker} still busy"

    async def slot_of(self, scan_id: str) -> str:
        slot = await self.admin.get(f"opportunity_scan_lookup:{scan_id}")
        assert slot is not None, f"no lookup key for {scan_id}"
        return str(slot)
