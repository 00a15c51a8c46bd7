"""Zoo service "batches": slow batches with nested ids and owners, 410 once gone.

=============================  =========================================================
request                        answers
=============================  =========================================================
``POST /batches``              200 ``{"batch": {"id", "phase": "queued"}}``; body
                               ``{"query": {"ticker": ...}, "requested_by": ..., "fail"}``
``GET /batches/<id>``          200 ``{"batch": {"id", "phase"}, "owner": {"name"}}``, phase
                               ``queued``, ``running``, ``complete`` or ``failed``; 410
                               unknown (expired or never made), 404 not yours
``GET /batches/<id>/items``    200 ``{"batch": {...}, "owner": {...}, "items": [...]}``
                               when complete or failed, 202 before, 410 unknown, 404 not
                               yours
=============================  =========================================================

Identity: ``Authorization: Bearer <user>``. No progress, no meta endpoint. A
batch runs 8-10 s. ``batches:id:<id>`` points at the key holding the batch's
record, which lives for the batch plus three times the promised retention
(:data:`RETENTION_S`).

Variants (module attributes, for ``--app tests.zoo.batches:<name>``):

- ``app``: correct, one record per batch (``batches:rec:<id>``);
- ``app_shared_slot``: BUG shared_slot, one record per (user, ticker)
  (``batches:slot:<user>:<ticker>``), as a result cache keyed by the query would
  be: a user's second batch with the same ticker overwrites the first, whose
  status and items then carry the second's id (``wrong_scan``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.zoo import _common as C

SCAN_S = (8.0, 10.0)
RETENTION_S = 10.0
BUGS = ("shared_slot",)


def _phase(record: dict[str, Any]) -> str:
    done = C.fraction_done(record)
    if done >= 1.0:
        return "failed" if record["fail"] else "complete"
    return "queued" if done < 0.1 else "running"


def build(bug: str = "") -> FastAPI:
    """The batches app, correct (``bug=""``) or with one bug of :data:`BUGS`."""
    C.check_bug(__name__, bug, BUGS)
    app = C.make_app("zoo batches")
    records = C.RedisRecords()

    async def _record(request: Request, batch_id: str) -> dict[str, Any] | JSONResponse:
        user = C.tenant(request, "Authorization", "Bearer ")
        if user is None:
            return C.unauthorized()
        where = await C.redis().get(f"batches:id:{batch_id}")
        record = None if where is None else await records.get(where)
        if record is None:
            return C.answer({"error": "gone"}, 410)
        if record["owner"] != user:
            return C.answer({"error": "not found"}, 404)
        return record

    def _shown(record: dict[str, Any]) -> dict[str, Any]:
        batch = {"id": record["id"], "phase": _phase(record)}
        return {"batch": batch, "owner": {"name": record["owner"]}}

    @app.post("/batches")
    async def create(request: Request) -> JSONResponse:
        user = C.tenant(request, "Authorization", "Bearer ")
        if user is None:
            return C.unauthorized()
        body = await C.json_body(request)
        query = body.get("query", {})
        if not isinstance(query, dict):
            return C.answer({"error": "query must be an object"}, 422)
        batch_id = C.new_id("batch")
        scan_s = C.scan_seconds(batch_id, *SCAN_S)
        ticker = str(query.get("ticker", "*"))
        record = {
            "id": batch_id,
            "owner": user,
            "ticker": ticker,
            "fail": bool(body.get("fail")),
            "created": C.now(),
            "scan_s": scan_s,
        }
        shared = bug == "shared_slot"
        where = f"batches:slot:{user}:{ticker}" if shared else f"batches:rec:{batch_id}"
        keep_s = scan_s + 3 * RETENTION_S
        await records.put(where, record, keep_s)
        await C.redis().set(f"batches:id:{batch_id}", where, px=int(keep_s * 1000))
        return C.answer({"batch": {"id": batch_id, "phase": "queued"}})

    @app.get("/batches/{batch_id}")
    async def status(request: Request, batch_id: str) -> JSONResponse:
        record = await _record(request, batch_id)
        if isinstance(record, JSONResponse):
            return record
        return C.answer(_shown(record))

    @app.get("/batches/{batch_id}/items")
    async def items(request: Request, batch_id: str) -> JSONResponse:
        record = await _record(request, batch_id)
        if isinstance(record, JSONResponse):
            return record
        shown = _shown(record)
        if shown["batch"]["phase"] in ("queued", "running"):
            return C.answer(shown, 202)
        rows = [{"ticker": record["ticker"], "rank": i} for i in range(2)]
        return C.answer({**shown, "items": rows if shown["batch"]["phase"] == "complete" else []})

    return app


app = build()
app_shared_slot = build("shared_slot")
