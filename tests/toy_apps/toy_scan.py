"""A small, correct scan service that is not the reference one (integration tests).

State lives only in Redis, keyed by scan id, with the owner checked on every
read, so it should never show an anomaly: a runner that blames it has a false
positive. Progress is derived from the start time, so it never goes backwards.
Speaks the default contract and serves a meta endpoint.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

SCAN_S = 1.0
RETENTION_S = 3.0
TOTAL = 14
PREFIX = "/api/v1/opportunities"

app = FastAPI()
_client: aioredis.Redis | None = None


def _redis() -> aioredis.Redis:
    global _client
    if _client is None:  # created after fork, in the worker
        _client = aioredis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0)
    return _client


def _user(authorization: str | None) -> str | None:
    if not authorization or not authorization.startswith("Bearer "):
        return None
    return authorization.removeprefix("Bearer ").strip() or None


@app.get(f"{PREFIX}/_meta")
async def meta() -> dict[str, Any]:
    return {
        "time_scale": 0.01,
        "expected_scan_s": SCAN_S,
        "retention_s": RETENTION_S,
        "scan_deadline_s": SCAN_S * 3,
        "flags": {},
        "retry_policy": "no retries, 1 s timeout",
    }


@app.post(f"{PREFIX}/discover")
async def discover(
    request: Request, authorization: str | None = Header(default=None)
) -> JSONResponse:
    user = _user(authorization)
    if user is None:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("filters"), dict):
        return JSONResponse({"error": 'send {"filters": {...}}'}, status_code=422)
    scan_id = "scan_" + uuid.uuid4().hex
    state = {"owner": user, "started": time.time()}
    ttl_ms = int((SCAN_S + RETENTION_S) * 1000)
    await _redis().set(f"toy:scan:{scan_id}", json.dumps(state), px=ttl_ms)
    return JSONResponse({"success": True, "scan_id": scan_id, "status": "initiated"})


async def _state(scan_id: str, user: str | None) -> tuple[str, int] | None:
    raw = await _redis().get(f"toy:scan:{scan_id}")
    if raw is None:
        return None
    state = json.loads(raw)
    if state["owner"] != user:
        return None
    done = min(TOTAL, int((time.time() - state["started"]) / SCAN_S * TOTAL))
    return ("complete" if done >= TOTAL else "scanning", done)


@app.get(f"{PREFIX}/status/{{scan_id}}")
async def status(scan_id: str, authorization: str | None = Header(default=None)) -> JSONResponse:
    found = await _state(scan_id, _user(authorization))
    if found is None:
        return JSONResponse({"status": "not_found", "scan_id": scan_id})
    word, done = found
    progress = {"strategies_completed": done, "total_strategies": TOTAL}
    return JSONResponse({"status": word, "scan_id": scan_id, "progress": progress})


@app.get(f"{PREFIX}/results/{{scan_id}}")
async def results(scan_id: str, authorization: str | None = Header(default=None)) -> JSONResponse:
    user = _user(authorization)
    found = await _state(scan_id, user)
    if found is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    word, _ = found
    items = [{"scan_id": scan_id, "user_id": user, "symbol": "BTC"}]
    body = {"success": True, "scan_id": scan_id, "user_id": user, "opportunities": items}
    return JSONResponse(body, status_code=200 if word == "complete" else 202)
