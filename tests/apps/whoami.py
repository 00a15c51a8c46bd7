"""A fork-safe FastAPI app that says which process served a request.

- ``GET /whoami`` -> ``{"pid": ..., "worker_id": ...}`` (``WORKER_ID`` read per request);
- ``PUT /kv/{key}`` (body = value) and ``GET /kv/{key}``: a Redis-backed store, so
  tests can see that workers share Redis but not memory;
- ``GET /memo/{key}``: a per-process counter, to show that memory is not shared;
- ``POST /echo``: echoes the request body (exercises request bodies through the router);
- ``GET /stream/{n}``: ``n`` chunks in a chunked response;
- ``GET /boom``: raises, so Starlette answers 500 and uvicorn then closes the
  connection without having said ``Connection: close``.

Importing it opens nothing: the Redis client is created on first use, after fork.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

app = FastAPI()
_client: aioredis.Redis | None = None
_memo: dict[str, int] = {}


def _redis() -> aioredis.Redis:
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    return _client


@app.get("/whoami")
async def whoami() -> dict[str, object]:
    return {"pid": os.getpid(), "worker_id": os.environ.get("WORKER_ID")}


@app.get("/boom")
async def boom() -> dict[str, object]:
    raise RuntimeError("boom (tests.apps.whoami raises here on purpose)")


@app.put("/kv/{key}")
async def put(key: str, request: Request) -> dict[str, str]:
    await _redis().set(f"test:{key}", await request.body())
    return {"stored": key}


@app.get("/kv/{key}")
async def get(key: str) -> dict[str, str | None]:
    value = await _redis().get(f"test:{key}")
    return {"key": key, "value": value.decode() if value is not None else None}


@app.get("/memo/{key}")
async def memo(key: str) -> dict[str, int]:
    _memo[key] = _memo.get(key, 0) + 1
    return {"count": _memo[key]}


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@app.get("/stream/{n}")
async def stream(n: int) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(n):
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")
