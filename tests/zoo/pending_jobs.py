"""Zoo service "pending_jobs": a Celery-shaped task API, without Celery.

==========================  ============================================================
request                     answers
==========================  ============================================================
``POST /tasks``             201 ``{"task_id"}``; body ``{"type": N}`` (N an integer,
                            required: 422 without it), ``"fail": true`` fails the task
``GET /tasks/<id>``         200 ``{"task_id", "task_status", "task_result"}``, status
                            ``PENDING`` (queued, running, **or an id never issued**),
                            ``SUCCESS`` (result: a number) or ``FAILURE`` (result: the
                            error's text)
==========================  ============================================================

No tenants, no progress, no results endpoint, no meta endpoint; the ``task_id`` of
a status answer echoes the URL. A create pushes a message on the Redis list
``celery``; an in-process job runner in every worker (started on the worker's first
request) pops messages, runs each task for 1-2 s and stores its result under
``celery-task-meta-<id>`` for :data:`RESULT_EXPIRES_S`. So it runs as plain ASGI
workers, with Celery's words and shape (the contract: ``pending_jobs.toml``).

Variants (``--app tests.zoo.pending_jobs:<name>``):

- ``app``: correct;
- ``app_failing_500``: a failed task's stored exception cannot be serialised, so its
  status answers 500 for ever, as the Celery tutorial's does (``terminal_unreadable``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.zoo import _common as C

SCAN_S = (1.0, 2.0)  # a task runs between these many seconds
RESULT_EXPIRES_S = 60.0  # Celery's result_expires: longer than the promised retention
QUEUE = "celery"
META = "celery-task-meta-{}"
_POLL_S = 0.05  # how often an idle runner looks at the queue
BUGS = ("failing_500",)


class _TaskError(Exception):
    """What a failed task raises; not JSON-serialisable, like any exception."""


async def _run(message: dict[str, Any]) -> None:
    await asyncio.sleep(C.scan_seconds(message["id"], *SCAN_S))
    if message["fail"]:
        meta = {"status": "FAILURE", "result": f"_TaskError('type {message['type']} failed')"}
    else:
        meta = {"status": "SUCCESS", "result": int(message["type"]) * 10}
    await C.redis().set(
        META.format(message["id"]), json.dumps(meta), px=int(RESULT_EXPIRES_S * 1000)
    )


async def _runner() -> None:
    """Pop task messages and run each in its own task, for ever."""
    running: set[asyncio.Task[None]] = set()
    while True:
        raw = await C.redis().lpop(QUEUE)
        if raw is None:
            await asyncio.sleep(_POLL_S)
            continue
        task = asyncio.create_task(_run(json.loads(raw)))
        running.add(task)
        task.add_done_callback(running.discard)


def build(bug: str = "") -> FastAPI:
    """The pending_jobs app, correct (``bug=""``) or with one bug of :data:`BUGS`."""
    C.check_bug(__name__, bug, BUGS)
    app = C.make_app("zoo pending_jobs")
    runner: list[asyncio.Task[None]] = []

    def _ensure_runner() -> None:
        if not runner or runner[0].done():
            runner[:] = [asyncio.create_task(_runner())]

    @app.post("/tasks", status_code=201)
    async def create(request: Request) -> JSONResponse:
        _ensure_runner()
        body = await C.json_body(request)
        kind = body.get("type")
        if isinstance(kind, bool) or not isinstance(kind, int):
            return C.answer({"detail": "type must be an integer"}, 422)
        task_id = str(uuid.uuid4())
        message = {"id": task_id, "type": kind, "fail": bool(body.get("fail"))}
        await C.redis().rpush(QUEUE, json.dumps(message))
        return C.answer({"task_id": task_id}, 201)

    @app.get("/tasks/{task_id}")
    async def status(task_id: str) -> JSONResponse:
        _ensure_runner()
        raw = await C.redis().get(META.format(task_id))
        meta = {"status": "PENDING", "result": None} if raw is None else json.loads(raw)
        result: Any = meta["result"]
        if meta["status"] == "FAILURE" and bug == "failing_500":
            result = _TaskError(result)  # JSONResponse cannot encode it: HTTP 500
        answer = {"task_id": task_id, "task_status": meta["status"], "task_result": result}
        return C.answer(answer)

    return app


app = build()
app_failing_500 = build("failing_500")
