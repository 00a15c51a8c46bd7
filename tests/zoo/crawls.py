"""Zoo service "crawls": a background task per crawl, with a liveness lease.

========================  ==============================================================
request                   answers
========================  ==============================================================
``POST /crawls``          202 ``{"crawl": {"id", "phase": "in_progress"}}``; body
                          ``{"target": ..., "depth": int, "fail": bool}``
``GET /crawls/<id>``      200 ``{"crawl": {"id", "phase"}, "pages": {"crawled", "total"}}``,
                          phase ``in_progress``, ``finished`` or ``errored``; 404 unknown
                          or not yours
``GET /crawls/<id>/docs`` 200 ``{"crawl": {...}, "documents": [...]}`` when finished or
                          errored, 202 while in progress, 404 unknown or not yours
========================  ==============================================================

Identity: ``Authorization: Token <user>``. Every answer names its worker in
``X-Served-By``. No meta endpoint. The worker that accepted a crawl runs it as
an asyncio task: :data:`STEPS` steps over 1.2-2 s, each writing its progress
and renewing a lease (``crawls:<id>:alive``). Every :data:`FLAKY_EVERY`-th crawl
a worker runs reuses a connection the site has closed and raises mid-way (of 12
crawls over 4 workers, some worker runs a third). The correct service writes ``errored`` when the
task fails, and a reader that finds the lease lapsed (the worker died) writes
``errored`` too; the first terminal phase wins (``SET NX``) and never changes.

Variants (module attributes, for ``--app tests.zoo.crawls:<name>``):

- ``app``: correct;
- ``app_dies``: BUG dies, a failing task ends silently and nobody checks the
  lease: the crawl reads ``in_progress`` forever (``stuck_scan``);
- ``app_vanishes``: BUG vanishes, a failing task deletes its crawl: it reads 404
  while its owner still waits for it (``status_not_found``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.zoo import _common as C

SCAN_S = (1.2, 2.0)
STEPS = 8
LEASE_S = 1.5
KEEP_S = 60.0  # every key of a crawl: far beyond any crawl plus its retention
RETENTION_S = 6.0
FLAKY_EVERY = 3
BUGS = ("dies", "vanishes")
_tasks: set[asyncio.Task[None]] = set()
_runs = itertools.count(1)  # crawls this worker process has run


async def _crawl(crawl_id: str, scan_s: float, fail: bool, bug: str) -> None:
    flaky = next(_runs) % FLAKY_EVERY == 0
    key = f"crawls:{crawl_id}"
    r = C.redis()
    try:
        for step in range(1, STEPS + 1):
            await asyncio.sleep(scan_s / STEPS)
            if step == STEPS // 2 and (fail or flaky):
                raise RuntimeError(f"{crawl_id}: the site answered garbage")
            if await r.get(f"{key}:final") is not None:
                return  # a reader declared it errored: stop writing
            await r.set(f"{key}:pages", step, px=int(KEEP_S * 1000))
            await r.set(f"{key}:alive", C.worker_id(), px=int(LEASE_S * 1000))
        await r.set(f"{key}:final", "finished", nx=True, px=int(KEEP_S * 1000))
        await r.delete(f"{key}:alive")
    except Exception:
        if bug == "dies":
            return  # swallowed: nothing says the crawl ended
        if bug == "vanishes":
            await r.delete(key, f"{key}:pages", f"{key}:alive")
            return
        await r.set(f"{key}:final", "errored", nx=True, px=int(KEEP_S * 1000))


def build(bug: str = "") -> FastAPI:
    """The crawls app, correct (``bug=""``) or with one bug of :data:`BUGS`."""
    C.check_bug(__name__, bug, BUGS)
    app = C.make_app("zoo crawls", worker_header="X-Served-By")

    async def _read(request: Request, crawl_id: str) -> tuple[dict[str, Any], int] | JSONResponse:
        user = C.tenant(request, "Authorization", "Token ")
        if user is None:
            return C.unauthorized()
        key = f"crawls:{crawl_id}"
        r = C.redis()
        raw, pages, final, alive = await r.mget(key, f"{key}:pages", f"{key}:final", f"{key}:alive")
        if raw is None or json.loads(raw)["owner"] != user:
            return C.answer({"detail": "crawl not found"}, 404)
        if final is None and alive is None and bug != "dies":  # its worker is gone
            await r.set(f"{key}:final", "errored", nx=True, px=int(KEEP_S * 1000))
            final = await r.get(f"{key}:final")
        crawl = {"id": crawl_id, "phase": final or "in_progress"}
        return crawl, int(pages or 0)

    @app.post("/crawls")
    async def create(request: Request) -> JSONResponse:
        user = C.tenant(request, "Authorization", "Token ")
        if user is None:
            return C.unauthorized()
        body = await C.json_body(request)
        crawl_id = C.new_id("crawl")
        key = f"crawls:{crawl_id}"
        record = {"owner": user, "target": str(body.get("target", "")), "created": C.now()}
        async with C.redis().pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(record), px=int(KEEP_S * 1000))
            pipe.set(f"{key}:pages", 0, px=int(KEEP_S * 1000))
            pipe.set(f"{key}:alive", C.worker_id(), px=int(LEASE_S * 1000))
            await pipe.execute()
        scan_s = C.scan_seconds(crawl_id, *SCAN_S)
        task = asyncio.create_task(_crawl(crawl_id, scan_s, bool(body.get("fail")), bug))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return C.answer({"crawl": {"id": crawl_id, "phase": "in_progress"}}, 202)

    @app.get("/crawls/{crawl_id}")
    async def status(request: Request, crawl_id: str) -> JSONResponse:
        read = await _read(request, crawl_id)
        if isinstance(read, JSONResponse):
            return read
        crawl, pages = read
        return C.answer({"crawl": crawl, "pages": {"crawled": pages, "total": STEPS}})

    @app.get("/crawls/{crawl_id}/docs")
    async def docs(request: Request, crawl_id: str) -> JSONResponse:
        read = await _read(request, crawl_id)
        if isinstance(read, JSONResponse):
            return read
        crawl, pages = read
        if crawl["phase"] == "in_progress":
            return C.answer({"crawl": crawl}, 202)
        documents = [{"url": f"https://example.test/{i}"} for i in range(pages)]
        return C.answer({"crawl": crawl, "documents": documents})

    return app


app = build()
app_dies = build("dies")
app_vanishes = build("vanishes")
