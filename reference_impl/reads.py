"""The status and results algorithms, as the real service runs them.

Status: resolve the scan_id to a slot (memory map, then the Redis lookup key,
then the result-index key), peek at the slot (memory, then Redis); no entry:
``scanning`` if the scan is active, else ``not_found``; entry partial:
``scanning``; else ``complete``. Results follows the same path: 200, 202, 404.

>>> progress_body(None, default_total=14)["total_strategies"]
14
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from reference_impl.payload import ScanPayload, StoredEntry
from reference_impl.store import result_key
from reference_impl.timing import DEFAULT_TOTAL_STRATEGIES, PARTIAL_TTL_S, RESULT_TTL_S

if TYPE_CHECKING:
    from reference_impl.service import ScanService

_RESOLUTION_PATHS = ("lookup", "index")


@dataclass(frozen=True, kw_only=True)
class Reply:
    """An HTTP answer: status code, JSON body, extra headers."""

    status_code: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def progress_body(payload: ScanPayload | None, *, default_total: int) -> dict[str, Any]:
    """``{strategies_completed, total_strategies, opportunities_found_so_far, percentage}``."""
    if payload is None:
        done, total, found = 0, default_total, 0
    else:
        total = default_total if payload.total_strategies is None else payload.total_strategies
        done, found = payload.strategies_completed, len(payload.opportunities)
    return {
        "strategies_completed": done,
        "total_strategies": total,
        "opportunities_found_so_far": found,
        "percentage": round(100.0 * done / total, 1) if total else 0.0,
    }


async def peek(svc: ScanService, slot: str, client: aioredis.Redis | None) -> StoredEntry | None:
    """The slot's entry: this worker's memory first, then Redis (cached in memory, F8)."""
    entry = svc.memory.get_result(slot)
    if entry is not None:
        return entry
    text = await svc.store.get(client, result_key(slot))
    if text is None:
        return None
    entry = StoredEntry.from_json(text)
    ttl_s = svc.timing.s(PARTIAL_TTL_S if entry.partial else RESULT_TTL_S)
    svc.memory.put_result(slot, entry, ttl_s)
    return entry


async def _locate(
    svc: ScanService, user_id: str, scan_id: str, client: aioredis.Redis | None
) -> tuple[str | None, StoredEntry | None]:
    slot = svc.memory.lookup(scan_id)
    if slot is not None and not svc.owns(user_id, slot, "memory"):
        slot = None
    if slot is None:
        keys = svc.resolution_keys(scan_id)
        values = await svc.store.read_chain(client, keys)
        for path, value in zip(_RESOLUTION_PATHS, values, strict=False):
            if value is not None and svc.owns(user_id, value, path):
                slot = value
                break
        if slot is not None and svc.flags.fix_restore_lookup_maps_on_read:
            svc.memory.register(scan_id, user_id, slot)
    if slot is None:
        return None, None
    return slot, await peek(svc, slot, client)


def _not_found(scan_id: str) -> dict[str, Any]:
    return {
        "success": False,
        "scan_id": scan_id,
        "status": "not_found",
        "message": "scan not found",
    }


def _failed(scan_id: str, error: str) -> dict[str, Any]:
    return {"success": False, "scan_id": scan_id, "status": "failed", "error": error}


def _unavailable(scan_id: str) -> Reply:
    return Reply(
        status_code=503,
        body={"success": False, "scan_id": scan_id, "error": "scan state temporarily unavailable"},
        headers={"Retry-After": "1"},
    )


def _complete_status(svc: ScanService, payload: ScanPayload) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": True,
        "scan_id": payload.scan_id,
        "status": "complete",
        "total_opportunities": len(payload.opportunities),
    }
    without = svc.flags.complete_status_without_progress
    if not without or svc.flags.fix_status_progress_metadata:
        body["progress"] = progress_body(payload, default_total=DEFAULT_TOTAL_STRATEGIES)
    return body


async def _missing_state(
    svc: ScanService, scan_id: str, slot: str, client: aioredis.Redis | None, *, for_results: bool
) -> Reply:
    """A scan_id that resolves but whose result key is gone (expired or evicted)."""
    active = await svc.is_active(slot, client)
    if svc.flags.missing_state_reads_as_not_found:
        if for_results:
            if active:
                body = {
                    "success": False,
                    "scan_id": scan_id,
                    "status": "scanning",
                    "message": "scan in progress",
                }
                return Reply(status_code=202, body=body)
            return Reply(
                status_code=404,
                body={"success": False, "scan_id": scan_id, "error": "scan not found"},
            )
        if active:
            progress = progress_body(None, default_total=DEFAULT_TOTAL_STRATEGIES)
            return Reply(
                status_code=200,
                body={
                    "success": True,
                    "scan_id": scan_id,
                    "status": "scanning",
                    "progress": progress,
                },
            )
        return Reply(status_code=200, body=_not_found(scan_id))
    if active:
        return _unavailable(scan_id)
    body = _failed(scan_id, "scan state lost")
    return Reply(status_code=410 if for_results else 200, body=body)


async def _answerable(
    svc: ScanService, user_id: str, scan_id: str, *, for_results: bool
) -> Reply | StoredEntry:
    """The scan's live or complete entry, or the reply that ends the request: unknown
    (404 or not_found), state lost, abandoned or failed (410 or a 200 saying failed)."""
    code = 410 if for_results else 200
    client = await svc.read_client()
    slot, entry = await _locate(svc, user_id, scan_id, client)
    if slot is None:
        if for_results:
            body = {"success": False, "scan_id": scan_id, "error": "scan not found"}
            return Reply(status_code=404, body=body)
        return Reply(status_code=200, body=_not_found(scan_id))
    if entry is None:
        return await _missing_state(svc, scan_id, slot, client, for_results=for_results)
    if entry.partial:
        settled = await svc.settle_partial(slot, entry, client)
        if settled is None:
            body = _failed(entry.payload.scan_id, "scan abandoned: its worker is gone")
            return Reply(status_code=code, body=body)
        entry = settled
    if entry.payload.status == "failed":
        payload = entry.payload
        return Reply(
            status_code=code, body=_failed(payload.scan_id, payload.error or "scan failed")
        )
    return entry


async def status(svc: ScanService, user_id: str, scan_id: str) -> Reply:
    """``GET /status/{scan_id}``: always 200 except 503 when sound cannot read Redis."""
    entry = await _answerable(svc, user_id, scan_id, for_results=False)
    if isinstance(entry, Reply):
        return entry
    payload = entry.payload
    if entry.partial:
        progress = progress_body(payload, default_total=DEFAULT_TOTAL_STRATEGIES)
        return Reply(
            status_code=200,
            body={
                "success": True,
                "scan_id": payload.scan_id,
                "status": "scanning",
                "progress": progress,
            },
        )
    return Reply(status_code=200, body=_complete_status(svc, payload))


async def results(svc: ScanService, user_id: str, scan_id: str) -> Reply:
    """``GET /results/{scan_id}``: 200 complete, 202 partial, 404 unknown (410 failed, sound)."""
    entry = await _answerable(svc, user_id, scan_id, for_results=True)
    if isinstance(entry, Reply):
        return entry
    payload = entry.payload
    if entry.partial:
        body = {
            "success": False,
            "scan_id": payload.scan_id,
            "user_id": payload.user_id,
            "status": "scanning",
            "message": "scan in progress",
            "progress": progress_body(payload, default_total=DEFAULT_TOTAL_STRATEGIES),
        }
        return Reply(status_code=202, body=body)
    opportunities = [
        {
            "id": o.id,
            "strategy": o.strategy,
            "symbol": o.symbol,
            "score": o.score,
            "user_id": o.user_id,
            "scan_id": o.scan_id,
        }
        for o in payload.opportunities
    ]
    body = {
        "success": True,
        "scan_id": payload.scan_id,
        "user_id": payload.user_id,
        "status": "complete",
        "opportunities": opportunities,
        "total_opportunities": len(opportunities),
        "strategies_completed": payload.strategies_completed,
        "total_strategies": payload.total_strategies,
        "completed_at": payload.completed_at,
    }
    return Reply(status_code=200, body=body)
