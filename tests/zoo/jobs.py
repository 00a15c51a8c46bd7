"""Zoo service "jobs": a job queue API that answers create with 201 and a Location.

==========================  ============================================================
request                     answers
==========================  ============================================================
``POST /jobs``              201, ``Location: /jobs/<id>``, ``{"job": {"state": "queued"}}``
                            (no id in the body); body ``{"symbols": [...], "fail": bool}``
``GET /jobs/<id>``          200 ``{"job": {"id", "state"}}``, state ``queued``,
                            ``running``, ``done`` or ``error``; **404** unknown or not yours
``GET /jobs/<id>/result``   200 ``{"job": {...}, "items": [...]}`` when done, 202 before,
                            404 unknown or not yours
==========================  ============================================================

Identity: ``Authorization: Bearer <user>``. No progress, no meta endpoint. A job
runs 1-2 s; its record (``jobs:<id>``) lives for the job plus three times the
promised retention (:data:`RETENTION_S`).

Variants (module attributes, for ``--app tests.zoo.jobs:<name>``):

- ``app``: correct;
- ``app_per_process``: BUG per_process, the records live in a dict of the
  worker that created the job: the other workers answer 404 (``status_not_found``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.zoo import _common as C

SCAN_S = (1.0, 2.0)  # a job takes between these many seconds
RETENTION_S = 6.0  # promised: a finished job stays readable this long
BUGS = ("per_process",)


def _state(record: dict[str, Any]) -> str:
    done = C.fraction_done(record)
    if done >= 1.0:
        return "error" if record["fail"] else "done"
    return "queued" if done < 0.2 else "running"


def build(bug: str = "") -> FastAPI:
    """The jobs app, correct (``bug=""``) or with one bug of :data:`BUGS`."""
    C.check_bug(__name__, bug, BUGS)
    app = C.make_app("zoo jobs")
    records = C.ProcessRecords() if bug == "per_process" else C.RedisRecords()

    async def _job(request: Request, job_id: str) -> dict[str, Any] | JSONResponse:
        user = C.tenant(request, "Authorization", "Bearer ")
        if user is None:
            return C.unauthorized()
        record = await records.get(f"jobs:{job_id}")
        if record is None or record["owner"] != user:
            return C.answer({"detail": "no such job"}, 404)
        return record

    @app.post("/jobs")
    async def create(request: Request) -> JSONResponse:
        user = C.tenant(request, "Authorization", "Bearer ")
        if user is None:
            return C.unauthorized()
        body = await C.json_body(request)
        symbols = body.get("symbols", [])
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            return C.answer({"detail": "symbols must be a list of strings"}, 422)
        job_id = C.new_id("job")
        scan_s = C.scan_seconds(job_id, *SCAN_S)
        record = {
            "id": job_id,
            "owner": user,
            "symbols": symbols,
            "fail": bool(body.get("fail")),
            "created": C.now(),
            "scan_s": scan_s,
        }
        await records.put(f"jobs:{job_id}", record, scan_s + 3 * RETENTION_S)
        return C.answer({"job": {"state": "queued"}}, 201, Location=f"/jobs/{job_id}")

    @app.get("/jobs/{job_id}")
    async def status(request: Request, job_id: str) -> JSONResponse:
        record = await _job(request, job_id)
        if isinstance(record, JSONResponse):
            return record
        return C.answer({"job": {"id": job_id, "state": _state(record)}})

    @app.get("/jobs/{job_id}/result")
    async def result(request: Request, job_id: str) -> JSONResponse:
        record = await _job(request, job_id)
        if isinstance(record, JSONResponse):
            return record
        state = _state(record)
        job = {"id": job_id, "state": state}
        if state in ("queued", "running"):
            return C.answer({"job": job}, 202)
        items = [{"symbol": s, "score": 1.0} for s in record["symbols"] or ["ANY"]]
        return C.answer({"job": job, "items": [] if state == "error" else items})

    return app


app = build()
app_per_process = build("per_process")
