"""What a result slot holds: ``{payload, partial, cached_at}`` as frozen values.

Every opportunity carries the ``user_id`` and ``scan_id`` of the scan that
produced it, so a leaked or mixed-up payload is recognisable in any response.

>>> p = ScanPayload(scan_id="scan_1", user_id="alice", cache_key="alice:00", slot="alice:00",
...                 status="scanning", strategies_completed=0, total_strategies=0)
>>> entry = StoredEntry(payload=p, partial=True, cached_at=1.0)
>>> StoredEntry.from_json(entry.to_json()).payload == p
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

ScanState = Literal["scanning", "complete", "failed"]


@dataclass(frozen=True, kw_only=True)
class Opportunity:
    id: str
    strategy: str
    symbol: str
    score: float
    user_id: str
    scan_id: str


@dataclass(frozen=True, kw_only=True)
class ScanPayload:
    """The stored state of one scan (or, under F9, of whichever scan wrote the slot last)."""

    scan_id: str
    user_id: str
    cache_key: str
    slot: str
    status: ScanState
    strategies_completed: int
    total_strategies: int | None  # None: field missing (the default of 14 applies)
    opportunities: tuple[Opportunity, ...] = ()
    error: str | None = None
    worker_id: str = ""
    owner: str = ""  # the writing worker's incarnation (sound's liveness check)
    started_at: float = 0.0
    completed_at: float | None = None

    def restamped(self, *, scan_id: str, slot: str) -> ScanPayload:
        """This payload re-issued as scan ``scan_id`` (sound's fresh-cache reuse)."""
        opps = tuple(
            replace(o, scan_id=scan_id, id=o.id.replace(self.scan_id, scan_id))
            for o in self.opportunities
        )
        return replace(self, scan_id=scan_id, slot=slot, opportunities=opps)


@dataclass(frozen=True, kw_only=True)
class StoredEntry:
    payload: ScanPayload
    partial: bool
    cached_at: float

    def to_json(self) -> str:
        body = asdict(self.payload)
        if self.payload.total_strategies is None:
            del body["total_strategies"]
        return json.dumps({"payload": body, "partial": self.partial, "cached_at": self.cached_at})

    @classmethod
    def from_json(cls, text: str) -> StoredEntry:
        raw: dict[str, Any] = json.loads(text)
        body = dict(raw["payload"])
        body["total_strategies"] = body.get("total_strategies")
        body["opportunities"] = tuple(Opportunity(**o) for o in body.get("opportunities", ()))
        return cls(
            payload=ScanPayload(**body),
            partial=bool(raw["partial"]),
            cached_at=float(raw["cached_at"]),
        )
