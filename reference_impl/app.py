"""The FastAPI app: ``/api/v1/opportunities/{discover,status,results,_meta}``.

Run it as the real service ran (one process per worker, forked from a preloaded
parent)::

    REDIS_URL=redis://127.0.0.1:7001/0 REFIMPL_PRESET=claimed-fix WORKER_ID=1 \\
        uvicorn reference_impl.app:app --port 8001

or build one in-process (tests: several apps sharing one fakeredis server are
several workers)::

    app = create_app(preset="sound", time_scale=0.005, worker_id="w1",
                     redis_factory=lambda **kw: fakeredis.FakeAsyncRedis(
                         server=server, decode_responses=True, **kw))

Environment: ``REDIS_URL`` (required to serve), ``REFIMPL_PRESET`` (pre-fix,
claimed-fix, late-fix, sound; default ``DEFAULT_PRESET``, claimed-fix, the same
as ``Flags()`` and the harness), ``REFIMPL_FLAGS`` (JSON object overriding single
flags), ``REFIMPL_TIME_SCALE`` (default 0.01), ``REFIMPL_SEED`` (default 0),
``WORKER_ID`` (default: the pid). Bad values fail at import with a message
listing the valid names. Importing and building ``app`` opens no socket and
starts no task: per-worker state is built on first use, after the fork.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from reference_impl.clock import SYSTEM_CLOCK, Clock
from reference_impl.flags import (
    DEFAULT_PRESET,
    ConfigError,
    Flags,
    describe,
    flags_from_env,
    open_mechanisms,
    resolve_flags,
)
from reference_impl.reads import Reply
from reference_impl.redis_manager import RedisFactory, StoreUnavailable, url_factory
from reference_impl.service import DiscoverRequest, ScanService, resolution_policy, retry_policy
from reference_impl.store import StoreError
from reference_impl.timing import (
    DEFAULT_TIME_SCALE,
    DEFAULT_TOTAL_STRATEGIES,
    EXPECTED_SCAN_S,
    RATE_LIMIT_PER_MINUTE,
    RESULT_TTL_S,
    Timing,
    time_scale_problem,
)

PREFIX = "/api/v1/opportunities"
_USER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
_MAX_STRATEGIES = 64


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """Everything an app instance needs; the worker id may stay None until after the fork."""

    preset: str
    flags: Flags
    timing: Timing
    redis_url: str | None
    redis_factory: RedisFactory | None
    worker_id: str | None


class _BadRequest(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class _Worker:
    """Builds the per-process service on first use (after any fork)."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self._service: ScanService | None = None

    @property
    def worker_id(self) -> str:
        return self.config.worker_id or os.environ.get("WORKER_ID") or str(os.getpid())

    def service(self) -> ScanService:
        if self._service is None:
            factory = self.config.redis_factory
            if factory is None:
                url = self.config.redis_url or os.environ.get("REDIS_URL")
                if not url:
                    raise ConfigError(
                        "REDIS_URL is not set: export REDIS_URL=redis://127.0.0.1:<port>/0"
                    )
                factory = url_factory(url)
            self._service = ScanService(
                flags=self.config.flags,
                timing=self.config.timing,
                worker_id=self.worker_id,
                redis_factory=factory,
            )
        return self._service

    async def aclose(self) -> None:
        if self._service is not None:
            await self._service.shutdown()
            self._service = None


def _user(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise _BadRequest(
            401, "missing Authorization header: send 'Authorization: Bearer <user_id>'"
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _USER_ID.fullmatch(token):
        raise _BadRequest(
            401,
            "malformed Authorization header: send 'Authorization: Bearer <user_id>' "
            "with user_id of 1-128 letters, digits or _.@-",
        )
    return token


def _discover_request(raw: bytes) -> DiscoverRequest:
    if not raw.strip():
        return DiscoverRequest()
    try:
        body = json.loads(raw)
    except ValueError:
        raise _BadRequest(422, 'body is not JSON: send an object such as {"filters": {}}') from None
    if not isinstance(body, dict):
        raise _BadRequest(422, 'body must be a JSON object such as {"filters": {}}')
    unknown = set(body) - {"filters", "force_refresh", "simulate"}
    if unknown:
        raise _BadRequest(
            422,
            f"unknown body field(s) {sorted(unknown)}: "
            "allowed are filters, force_refresh, simulate",
        )
    filters = body.get("filters", {})
    if not isinstance(filters, dict):
        raise _BadRequest(422, f"filters={filters!r}: must be a JSON object")
    force = body.get("force_refresh", False)
    if not isinstance(force, bool):
        raise _BadRequest(422, f"force_refresh={force!r}: must be true or false")
    simulate = body.get("simulate", {})
    if not isinstance(simulate, dict) or set(simulate) - {"strategies", "fail_strategy"}:
        raise _BadRequest(
            422, f"simulate={simulate!r}: must be an object with strategies, fail_strategy"
        )
    n = simulate.get("strategies", DEFAULT_TOTAL_STRATEGIES)
    if type(n) is not int or not 0 <= n <= _MAX_STRATEGIES:
        raise _BadRequest(
            422, f"simulate.strategies={n!r}: must be an integer 0..{_MAX_STRATEGIES}"
        )
    fail = simulate.get("fail_strategy")
    if fail is not None and (type(fail) is not int or not 0 <= fail < max(n, 1)):
        raise _BadRequest(
            422, f"simulate.fail_strategy={fail!r}: must be null or an index below strategies"
        )
    return DiscoverRequest(filters=filters, force_refresh=force, strategies=n, fail_strategy=fail)


def _json(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status_code, headers=dict(reply.headers))


def _meta(config: AppConfig, worker_id: str) -> dict[str, Any]:
    t = config.timing
    return {
        "preset": config.preset,
        "flags": {info.name: info.value for info in describe(config.flags)},
        "open_mechanisms": sorted(open_mechanisms(config.flags), key=lambda f: (len(f), f)),
        "time_scale": t.time_scale,
        "seed": t.seed,
        "total_strategies": DEFAULT_TOTAL_STRATEGIES,
        "expected_scan_s": t.s(EXPECTED_SCAN_S),
        "scan_budget_s": t.scan_budget_s,
        "result_ttl_s": t.s(RESULT_TTL_S),
        "lookup_ttl_s": resolution_policy(config.flags, t).ttl_ms / 1000,
        "retention_s": t.s(RESULT_TTL_S),
        "scan_deadline_s": t.scan_deadline_s,
        "worker_lease_s": t.worker_lease_s,
        "rate_limit_per_minute": RATE_LIMIT_PER_MINUTE,
        "retry_policy": retry_policy(config.flags).as_dict(),
        "worker_id": worker_id,
        "pid": os.getpid(),
    }


def create_app(
    *,
    preset: str = DEFAULT_PRESET,
    flags: Flags | Mapping[str, object] | None = None,
    redis_url: str | None = None,
    redis_factory: RedisFactory | None = None,
    time_scale: float = DEFAULT_TIME_SCALE,
    seed: int = 0,
    worker_id: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> FastAPI:
    """A scan service app. ``flags``: a full Flags value, or overrides of ``preset``.

    ``clock``: where the service reads time (unit tests inject a virtual one).
    """
    by_preset = resolve_flags(preset, None if isinstance(flags, Flags) else flags)
    resolved = flags if isinstance(flags, Flags) else by_preset
    scale_problem = time_scale_problem(time_scale)
    if scale_problem is not None:
        raise ConfigError(f"time_scale={time_scale!r}: {scale_problem}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r}: must be an integer")
    config = AppConfig(
        preset=preset,
        flags=resolved,
        timing=Timing(time_scale=float(time_scale), seed=seed, clock=clock),
        redis_url=redis_url,
        redis_factory=redis_factory,
        worker_id=worker_id,
    )
    worker = _Worker(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.service()  # fail fast on a missing REDIS_URL; still no I/O
        yield
        await worker.aclose()

    app = FastAPI(title="reference scan service", lifespan=lifespan)
    app.state.worker = worker

    @app.exception_handler(_BadRequest)
    async def _bad_request(_: Request, exc: _BadRequest) -> JSONResponse:
        return JSONResponse({"success": False, "error": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(StoreError)
    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"success": False, "error": str(exc)}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.get(f"{PREFIX}/_meta")
    async def meta() -> dict[str, Any]:
        return _meta(config, worker.worker_id)

    @app.post(f"{PREFIX}/discover")
    async def discover(request: Request) -> JSONResponse:
        user = _user(request)
        body = _discover_request(await request.body())
        return _json(await worker.service().discover(user, body))

    @app.get(f"{PREFIX}/status/{{scan_id}}")
    async def status(scan_id: str, request: Request) -> JSONResponse:
        user = _user(request)
        service = worker.service()
        try:
            return _json(await service.status(user, scan_id))
        except (StoreUnavailable, StoreError):
            raise
        except Exception as exc:  # the real handler: any exception reads as 'failed'
            return JSONResponse(
                {"success": False, "scan_id": scan_id, "status": "failed", "error": repr(exc)}
            )

    @app.get(f"{PREFIX}/results/{{scan_id}}")
    async def results(scan_id: str, request: Request) -> JSONResponse:
        user = _user(request)
        return _json(await worker.service().results(user, scan_id))

    return app


def _app_from_env() -> FastAPI:
    preset, flags = flags_from_env()
    scale_text = os.environ.get("REFIMPL_TIME_SCALE", repr(DEFAULT_TIME_SCALE))
    seed_text = os.environ.get("REFIMPL_SEED", "0")
    try:
        scale = float(scale_text)
    except ValueError:
        raise ConfigError(
            f"REFIMPL_TIME_SCALE={scale_text!r}: {time_scale_problem(scale_text)}"
        ) from None
    try:
        seed = int(seed_text)
    except ValueError:
        raise ConfigError(f"REFIMPL_SEED={seed_text!r}: must be an integer, e.g. 0") from None
    app = create_app(preset=preset, flags=flags, time_scale=scale, seed=seed)
    return app


app = _app_from_env()
