"""Zoo service "reports": a flat report API with its own words and field names.

===============================  =======================================================
request                          answers
===============================  =======================================================
``POST /v1/reports``             200 ``{"report_id", "state": "accepted"}``; body
                                 ``{"criteria": {"asset": ...}, "fail": bool}``
``GET /v1/reports/<id>/state``   200 ``{"report_id", "owner", "state"}``, state
                                 ``building``, ``ready`` or ``broken``; 200
                                 ``{"state": "unknown"}`` when it does not know the report;
                                 403 ``{"error": "forbidden"}`` when it is not yours
``GET /v1/reports/<id>``         200 ``{"report_id", "owner", "rows": [...]}`` when ready,
                                 202 while building, 404 unknown, 403 not yours
===============================  =======================================================

Identity: ``X-User: <user>``. No progress, no meta endpoint. A report builds in
1-2 s; its record (``reports:<id>``) lives for the build plus three times the
promised retention (:data:`RETENTION_S`).

Variants (module attributes, for ``--app tests.zoo.reports:<name>``):

- ``app``: correct;
- ``app_short_ttl``: BUG short_ttl, the record expires :data:`SHORT_TTL_S` after
  the build instead of after the promised retention (``status_not_found``,
  ``results_404``);
- ``app_no_owner_check``: BUG no_owner_check, anyone who knows a report id reads
  it (``cross_tenant_leak``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.zoo import _common as C

SCAN_S = (1.0, 2.0)
RETENTION_S = 6.0
SHORT_TTL_S = 0.5
BUGS = ("short_ttl", "no_owner_check")


def _state(record: dict[str, Any]) -> str:
    if C.fraction_done(record) < 1.0:
        return "building"
    return "broken" if record["fail"] else "ready"


def build(bug: str = "") -> FastAPI:
    """The reports app, correct (``bug=""``) or with one bug of :data:`BUGS`."""
    C.check_bug(__name__, bug, BUGS)
    app = C.make_app("zoo reports")
    records = C.RedisRecords()
    keep_s = SHORT_TTL_S if bug == "short_ttl" else 3 * RETENTION_S

    async def _report(request: Request, report_id: str) -> tuple[str, dict[str, Any] | None]:
        """("", record), ("", None) for unknown, or (an error answer's kind, None)."""
        user = C.tenant(request, "X-User")
        if user is None:
            return "unauthorized", None
        record = await records.get(f"reports:{report_id}")
        if record is not None and record["owner"] != user and bug != "no_owner_check":
            return "forbidden", None
        return "", record

    @app.post("/v1/reports")
    async def create(request: Request) -> JSONResponse:
        user = C.tenant(request, "X-User")
        if user is None:
            return C.unauthorized()
        body = await C.json_body(request)
        criteria = body.get("criteria", {})
        if not isinstance(criteria, dict):
            return C.answer({"error": "criteria must be an object"}, 422)
        report_id = C.new_id("rep")
        scan_s = C.scan_seconds(report_id, *SCAN_S)
        record = {
            "owner": user,
            "criteria": criteria,
            "fail": bool(body.get("fail")),
            "created": C.now(),
            "scan_s": scan_s,
        }
        await records.put(f"reports:{report_id}", record, scan_s + keep_s)
        return C.answer({"report_id": report_id, "state": "accepted"})

    @app.get("/v1/reports/{report_id}/state")
    async def state(request: Request, report_id: str) -> JSONResponse:
        refusal, record = await _report(request, report_id)
        if refusal:
            return C.answer({"error": refusal}, 401 if refusal == "unauthorized" else 403)
        if record is None:
            return C.answer({"state": "unknown"})
        return C.answer({"report_id": report_id, "owner": record["owner"], "state": _state(record)})

    @app.get("/v1/reports/{report_id}")
    async def report(request: Request, report_id: str) -> JSONResponse:
        refusal, record = await _report(request, report_id)
        if refusal:
            return C.answer({"error": refusal}, 401 if refusal == "unauthorized" else 403)
        if record is None:
            return C.answer({"error": "no such report"}, 404)
        body = {"report_id": report_id, "owner": record["owner"], "state": _state(record)}
        if body["state"] == "building":
            return C.answer(body, 202)
        rows = [{"asset": record["criteria"].get("asset", "*"), "n": 1}]
        return C.answer({**body, "rows": rows if body["state"] == "ready" else []})

    return app


app = build()
app_short_ttl = build("short_ttl")
app_no_owner_check = build("no_owner_check")
