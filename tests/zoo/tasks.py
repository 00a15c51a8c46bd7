"""Zoo service "tasks": a slow task API with nested fields and nested progress.

==================================  ====================================================
request                             answers
==================================  ====================================================
``POST /api/v2/tasks``              201 ``{"data": {"task": {"id", "status": "pending"}}}``;
                                    body ``{"params": {"asset": ...}?, "fail": bool}``
``GET /api/v2/tasks/<id>``          200 ``{"data": {"task": {"id", "status"},
                                    "progress": {"done", "of"}}}``, status ``pending``,
                                    ``working``, ``ok`` or ``failed``; unknown or not
                                    yours: 200 ``{"data": {"task": {"status": "missing"}}}``
``GET /api/v2/tasks/<id>/output``   200 ``{"data": {"task": {...}, "rows": [...]}}``; the
                                    task's status says whether the rows are final
                                    (``working``: not yet); 404 unknown or not yours
==================================  ====================================================

Identity: ``X-Api-Key: key-<user>``. No meta endpoint. A task runs 8-10 s in
:data:`STEPS` steps; its record (``tasks:<id>``) lives for the task plus three
times the promised retention (:data:`RETENTION_S`).

Variants (module attributes, for ``--app tests.zoo.tasks:<name>``):

- ``app``: correct;
- ``app_stale_cache``: BUG stale_cache, each worker caches the answers it read
  for :data:`CACHE_S` seconds: a worker that saw the task working keeps saying so
  after another said ok (``status_regression``), and shows older progress
  (``progress_regression``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.zoo import _common as C

SCAN_S = (8.0, 10.0)
RETENTION_S = 12.0
STEPS = 10
CACHE_S = 4.0
BUGS = ("stale_cache",)
_MISSING = {"data": {"task": {"status": "missing"}}}


def _task(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    fraction = C.fraction_done(record)
    done = int(fraction * STEPS)
    if fraction >= 1.0:
        word = "failed" if record["fail"] else "ok"
    else:
        word = "pending" if done == 0 else "working"
    return {"id": record["id"], "status": word}, {"done": done, "of": STEPS}


def build(bug: str = "") -> FastAPI:
    """The tasks app, correct (``bug=""``) or with one bug of :data:`BUGS`."""
    C.check_bug(__name__, bug, BUGS)
    app = C.make_app("zoo tasks")
    records = C.RedisRecords()
    cache = C.StaleCache(CACHE_S if bug == "stale_cache" else 0.0)

    async def _record(request: Request, task_id: str) -> dict[str, Any] | JSONResponse | None:
        user = C.tenant(request, "X-Api-Key", "key-")
        if user is None:
            return C.unauthorized()

        async def load() -> dict[str, Any] | None:
            record = await records.get(f"tasks:{task_id}")
            if record is None:
                return None
            task, progress = _task(record)  # what this worker read, frozen if cached
            return {**record, "task": task, "progress": progress}

        record = await cache.read(task_id, load)
        return record if record is not None and record["owner"] == user else None

    @app.post("/api/v2/tasks")
    async def create(request: Request) -> JSONResponse:
        user = C.tenant(request, "X-Api-Key", "key-")
        if user is None:
            return C.unauthorized()
        body = await C.json_body(request)
        params = body.get("params", {})
        if not isinstance(params, dict):
            return C.answer({"error": "params must be an object"}, 422)
        task_id = C.new_id("task")
        scan_s = C.scan_seconds(task_id, *SCAN_S)
        record = {
            "id": task_id,
            "owner": user,
            "asset": params.get("asset", ""),
            "fail": bool(body.get("fail")),
            "created": C.now(),
            "scan_s": scan_s,
        }
        await records.put(f"tasks:{task_id}", record, scan_s + 3 * RETENTION_S)
        return C.answer({"data": {"task": {"id": task_id, "status": "pending"}}}, 201)

    @app.get("/api/v2/tasks/{task_id}")
    async def status(request: Request, task_id: str) -> JSONResponse:
        record = await _record(request, task_id)
        if isinstance(record, JSONResponse):
            return record
        if record is None:
            return C.answer(_MISSING)
        return C.answer({"data": {"task": record["task"], "progress": record["progress"]}})

    @app.get("/api/v2/tasks/{task_id}/output")
    async def output(request: Request, task_id: str) -> JSONResponse:
        record = await _record(request, task_id)
        if isinstance(record, JSONResponse):
            return record
        if record is None:
            return C.answer({"error": "no such task"}, 404)
        task = record["task"]
        rows = [{"asset": record["asset"] or "*", "value": i} for i in range(3)]
        return C.answer({"data": {"task": task, "rows": rows if task["status"] == "ok" else []}})

    return app


app = build()
app_stale_cache = build("stale_cache")
