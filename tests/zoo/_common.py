"""Plumbing shared by the zoo services: Redis, identity, time, and the bugs' parts.

Every zoo service is a plain FastAPI app run by scanproof as several worker
processes. A worker finds its Redis in ``REDIS_URL`` and its index in
``WORKER_ID`` (both set by the cluster, read at request time, after the fork).
Unit tests swap Redis for fakeredis with :func:`use_redis` and move the clock
with :func:`set_clock`.

Most zoo scans are *timed records*: the discover request stores who asked, when
and for how long the scan runs; every answer derives the state from the clock.
Such a scan survives worker kills and restarts, as a queue-backed job would.

>>> scan_seconds("job_0", 1.0, 2.0) == scan_seconds("job_0", 1.0, 2.0)
True
>>> 1.0 <= scan_seconds("job_1", 1.0, 2.0) <= 2.0
True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

REDIS_TIMEOUT_S = 1.0
_client: Any = None  # one client per worker process, made on first use (after the fork)
_clock: Callable[[], float] = time.time


def redis() -> Any:
    """This process's Redis client (``REDIS_URL``), or the one :func:`use_redis` set."""
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(
            os.environ["REDIS_URL"], socket_timeout=REDIS_TIMEOUT_S, decode_responses=True
        )
    return _client


def use_redis(client: Any) -> None:
    """Tests: serve from ``client`` (a fakeredis client with ``decode_responses=True``)."""
    global _client
    _client = client


def now() -> float:
    return _clock()


def set_clock(clock: Callable[[], float]) -> None:
    """Tests: read time from ``clock`` instead of :func:`time.time`."""
    global _clock
    _clock = clock


def worker_id() -> str:
    """This worker's index (``WORKER_ID``, set by the cluster), else its pid."""
    return os.environ.get("WORKER_ID") or str(os.getpid())


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def scan_seconds(scan_id: str, low: float, high: float) -> float:
    """How long this scan runs: fixed by its id, between ``low`` and ``high``."""
    digest = int(hashlib.sha1(scan_id.encode()).hexdigest()[:8], 16)
    return low + (high - low) * (digest % 1000) / 999


def fraction_done(record: dict[str, Any]) -> float:
    """How far a timed record's scan is, 0..1, from the clock."""
    elapsed = now() - float(record["created"])
    return max(0.0, min(1.0, elapsed / float(record["scan_s"])))


def tenant(request: Request, header: str, prefix: str = "") -> str | None:
    """The caller's identity: ``header`` with ``prefix`` stripped; None when absent."""
    value = request.headers.get(header, "")
    if not value.startswith(prefix):
        return None
    return value.removeprefix(prefix).strip() or None


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def answer(body: Any, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def unauthorized() -> JSONResponse:
    return answer({"error": "unauthorized"}, 401)


class RedisRecords:
    """JSON records in Redis, one key each, with a lifetime (the correct design)."""

    async def put(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        await redis().set(key, json.dumps(value), px=int(ttl_s * 1000))

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await redis().get(key)
        return None if raw is None else dict(json.loads(raw))


class ProcessRecords(RedisRecords):
    """BUG per_process: the same records in a dict of this worker only."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[dict[str, Any], float]] = {}

    async def put(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        self._data[key] = (value, now() + ttl_s)

    async def get(self, key: str) -> dict[str, Any] | None:
        value, until = self._data.get(key, ({}, 0.0))
        return value if now() < until else None


class StaleCache:
    """BUG stale_cache: a per-worker read-through cache nobody invalidates.

    ``ttl_s = 0`` turns it off (the correct variant)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._data: dict[str, tuple[Any, float]] = {}

    async def read(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl_s > 0:
            hit = self._data.get(key)
            if hit is not None and now() - hit[1] < self.ttl_s:
                return hit[0]
        value = await load()
        if self.ttl_s > 0:
            self._data[key] = (value, now())
        return value


def check_bug(module: str, bug: str, bugs: tuple[str, ...]) -> None:
    if bug and bug not in bugs:
        raise ValueError(f"{module}: bug {bug!r}: valid: {', '.join(bugs)} or '' (correct)")


def make_app(title: str, *, worker_header: str = "") -> FastAPI:
    """A FastAPI app whose Redis errors answer 503 (a failed request, not a wrong
    answer) and, when ``worker_header`` is given, whose every answer names the
    worker in it (the router adds ``X-Scanproof-Worker`` on its own)."""
    app = FastAPI(title=title)

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: Exception) -> Response:
        return answer({"error": f"redis: {type(exc).__name__}"}, 503, **{"Retry-After": "1"})

    if worker_header:

        @app.middleware("http")
        async def _name_worker(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            response = await call_next(request)
            response.headers[worker_header] = worker_id()
            return response

    return app
