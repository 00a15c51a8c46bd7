"""The benchmark's service: a cheap Redis-backed GET in FastAPI, fork-safe.

``GET /kv`` reads one key from Redis and returns it as JSON. The Redis client is
created on first use, after fork, from ``REDIS_URL``.
"""

from __future__ import annotations

import os

import redis.asyncio as aioredis
from fastapi import FastAPI

app = FastAPI()
_client: aioredis.Redis | None = None


@app.get("/kv")
async def get_kv() -> dict[str, str | None]:
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    value = await _client.get("bench:key")
    return {"worker": os.environ.get("WORKER_ID"), "value": value.decode() if value else None}
