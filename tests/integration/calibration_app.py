"""A tiny job service for the calibration tests: no meta endpoint, fixed-length scans.

Not the reference service and not the toy app: it states no time scale at all, so
scanproof must calibrate it. Each scan's state lives in Redis (keyed by scan id,
owner checked on every read); a scan of ``app`` is complete ``SCAN_S`` seconds
after it was accepted, a scan of ``never`` never finishes. Speaks the default
contract paths and words; run it with a contract that says ``meta_path = ""``.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid

import redis.asyncio as aioredis
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

SCAN_S = 1.0
RETENTION_S = 30.0
TOTAL = 10
PREFIX = "/api/v1/opportunities"


def make_app(scan_s: float) -> FastAPI:
    """A service whose every scan takes ``scan_s`` seconds (``math.inf``: forever)."""
    service = FastAPI()
    client: list[aioredis.Redis] = []

    def redis() -> aioredis.Redis:
        if not client:  # created after fork, in the worker
            client.append(aioredis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0))
        return client[0]

    def user(authorization: str | None) -> str:
        return (authorization or "").removeprefix("Bearer ").strip()

    async def state(scan_id: str, owner: str) -> tuple[str, int] | None:
        raw = await redis().get(f"calib:{scan_id}")
        if raw is None or json.loads(raw)["owner"] != owner or not owner:
            return None
        elapsed = time.time() - json.loads(raw)["started"]
        done = TOTAL if elapsed >= scan_s else int(elapsed / scan_s * TOTAL)
        return ("complete" if done >= TOTAL else "scanning", done)

    @service.post(f"{PREFIX}/discover")
    async def discover(authorization: str | None = Header(default=None)) -> JSONResponse:
        owner = user(authorization)
        if not owner:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        scan_id = "job_" + uuid.uuid4().hex
        ttl = RETENTION_S + (3600.0 if math.isinf(scan_s) else scan_s)
        record = json.dumps({"owner": owner, "started": time.time()})
        await redis().set(f"calib:{scan_id}", record, px=int(ttl * 1000))
        return JSONResponse({"scan_id": scan_id, "status": "scanning"})

    @service.get(f"{PREFIX}/status/{{scan_id}}")
    async def status(
        scan_id: str, authorization: str | None = Header(default=None)
    ) -> JSONResponse:
        found = await state(scan_id, user(authorization))
        if found is None:
            return JSONResponse({"status": "not_found", "scan_id": scan_id})
        word, done = found
        progress = {"strategies_completed": done, "total_strategies": TOTAL}
        return JSONResponse({"status": word, "scan_id": scan_id, "progress": progress})

    @service.get(f"{PREFIX}/results/{{scan_id}}")
    async def results(
        scan_id: str, authorization: str | None = Header(default=None)
    ) -> JSONResponse:
        owner = user(authorization)
        found = await state(scan_id, owner)
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        items = [{"scan_id": scan_id, "user_id": owner, "symbol": "BTC"}]
        body = {"scan_id": scan_id, "user_id": owner, "opportunities": items}
        return JSONResponse(body, status_code=200 if found[0] == "complete" else 202)

    return service


app = make_app(SCAN_S)
never = make_app(math.inf)
