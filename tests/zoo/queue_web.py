"""Zoo service "queue": a web tier that only enqueues; job workers run the scans.

``POST /scans`` stores ``{"status": "queued"}`` under ``qz:<run>:scan:<id>`` and
LPUSHes ``{"id": <id>, "seconds": S}`` on the list ``qz:<run>:queue``; it answers 201
``{"scan_id", "status": "queued"}``. ``GET /scans/<id>`` answers the stored
``{"scan_id", "status"}`` (``queued``, ``running``, ``complete``), 404 when unknown.
The job workers are :mod:`tests.zoo.queue_worker` (not Celery: a plain list queue
with an in-flight list). ``<run>`` is ``SCANPROOF_RUN_ID`` (``local`` without it),
so two runs on one Redis never share a queue.

Contract: :data:`KEYS` (the ``[keys]`` patterns) and the paths above.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse

JOB_S = float(os.environ.get("QUEUE_JOB_S", "0.3"))
KEYS = {
    "queue": ("qz:{run}:queue",),
    "inflight": ("qz:{run}:inflight",),
    "result": ("qz:{run}:scan:{scan_id}",),
}


def prefix() -> str:
    """``qz:<run>``: this run's key namespace."""
    return f"qz:{os.environ.get('SCANPROOF_RUN_ID', 'local')}"


app = FastAPI(title="zoo queue web")
_client: Any = None


def _redis() -> Any:
    global _client
    if _client is None:  # made on first use, after the fork
        _client = aioredis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    return _client


@app.post("/scans", status_code=201)
async def create() -> dict[str, str]:
    scan_id = uuid.uuid4().hex
    await _redis().set(f"{prefix()}:scan:{scan_id}", json.dumps({"status": "queued"}))
    await _redis().lpush(f"{prefix()}:queue", json.dumps({"id": scan_id, "seconds": JOB_S}))
    return {"scan_id": scan_id, "status": "queued"}


@app.get("/scans/{scan_id}", response_model=None)
async def status(scan_id: str) -> dict[str, Any] | JSONResponse:
    raw = await _redis().get(f"{prefix()}:scan:{scan_id}")
    if raw is None:
        return JSONResponse({"detail": "no such scan"}, status_code=404)
    return {"scan_id": scan_id, **json.loads(raw)}
