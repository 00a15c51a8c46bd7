"""The web tier: queue a task, read its state (``--app tests.zoo.celery_jobs.web:app``).

The endpoints are plain (sync) functions, as in the tutorial: FastAPI runs them
in its thread pool, where Celery's blocking Redis calls belong. Each worker
process makes its own Celery app on first use, after the fork, from its own
``REDIS_URL``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from celery import Celery
from fastapi import Body
from fastapi.responses import JSONResponse

from tests.zoo import _common as C
from tests.zoo.celery_jobs.config import TASK_NAME, make_celery, variant

_apps: dict[int, Celery] = {}


def _celery() -> Celery:
    pid = os.getpid()
    if pid not in _apps:
        _apps.clear()  # a forked child must not reuse its parent's connections
        _apps[pid] = make_celery()
    return _apps[pid]


def build() -> Any:
    """The web app of the variant named by ``CELERY_JOBS_VARIANT`` (read at import)."""
    raw_errors = variant() == "failing_500"
    app = C.make_app("zoo celery_jobs")

    @app.post("/tasks", status_code=201)
    def create(payload: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
        task_type = int(payload["type"])  # no type: KeyError, a 500, as in the tutorial
        fail = bool(payload.get("fail"))
        task = _celery().send_task(TASK_NAME, args=[task_type], kwargs={"fail": fail})
        return {"task_id": str(task.id)}

    @app.get("/tasks/{task_id}")
    def status(task_id: str) -> JSONResponse:
        meta = _celery().backend.get_task_meta(task_id, cache=False)
        result = meta.get("result")
        if isinstance(result, BaseException) and not raw_errors:
            result = f"{type(result).__name__}: {result}"
        # failing_500: the exception itself, which JSON cannot encode (TypeError, 500).
        body = {"task_id": task_id, "task_status": meta["status"], "task_result": result}
        return JSONResponse(body)

    return app


app = build()
