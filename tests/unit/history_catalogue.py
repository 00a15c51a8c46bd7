"""A catalogue of small, hand-written histories for checker tests.

Times are in milliseconds from the start of the history; ``build()`` turns them
into the nanosecond tables the checkers read.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.history import schema as S
from harness.history.outcomes import v1_state
from harness.history.tables import History

MS = 1_000_000


@dataclass
class Hist:
    ops: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def _op(self, **cols: Any) -> str:
        op_id = f"t:{next(self._seq)}"
        at, took = cols.pop("at"), cols.pop("took", 10)
        row: dict[str, Any] = {
            S.OP: op_id,
            S.PROC: "t",
            S.SCAN_ID: "",
            S.FILTERS: "",
            S.PINNED_WORKER: -1,
            S.T_INVOKE: int(at * MS),
            S.T_COMPLETE: int((at + took) * MS),
            S.OUTCOME: "ok",
            S.WORKER: 0,
            S.HTTP_STATUS: 200,
            S.BODY_STATUS: "",
            S.RAW_STATUS: "",
            S.COMPLETED: -1,
            S.TOTAL: -1,
            S.FOUND: -1,
            S.HAS_PROGRESS: False,
            S.ITEMS: -1,
            S.BODY_SCAN_IDS: "",
            S.BODY_USER_IDS: "",
            S.ERROR: "",
        }
        row.update(cols)
        self.ops.append(row)
        return op_id

    def discover(self, tenant: str, scan: str, *, at: float, **kw: Any) -> str:
        return self._op(kind="discover", tenant=tenant, scan_id=scan, at=at, **kw)

    def status(
        self,
        tenant: str,
        scan: str,
        word: str,
        *,
        at: float,
        progress: tuple[int, int] | None = None,
        ids: str | None = None,
        users: str = "",
        **kw: Any,
    ) -> str:
        prog: dict[str, Any] = {}
        if progress is not None:
            prog = {S.HAS_PROGRESS: True, S.COMPLETED: progress[0], S.TOTAL: progress[1]}
        body_ids = scan if ids is None else ids
        if word == "not_found" and ids is None:
            body_ids = ""
        return self._op(
            kind="status",
            tenant=tenant,
            scan_id=scan,
            body_status=word,
            body_scan_ids=body_ids,
            body_user_ids=users,
            at=at,
            **prog,
            **kw,
        )

    def results(
        self,
        tenant: str,
        scan: str,
        http: int,
        *,
        at: float,
        ids: str | None = None,
        users: str = "",
        word: str | None = None,
        **kw: Any,
    ) -> str:
        """A results answer; its state (``word``) defaults to the reference's for ``http``."""
        body_ids = (scan if http in (200, 202) else "") if ids is None else ids
        state = v1_state("results", http, "") if word is None else word
        return self._op(
            kind="results", tenant=tenant, scan_id=scan, http_status=http, body_status=state,
            body_scan_ids=body_ids, body_user_ids=users, at=at, **kw,
        )  # fmt: skip

    def fault(
        self,
        name: str,
        *,
        at: float,
        until: float | None = None,
        destructive: bool = False,
        scope: str = "listed",
        scans: str = "",
        tenants: str = "",
    ) -> str:
        fid = f"f{len(self.faults)}"
        self.faults.append(
            {
                S.FAULT_ID: fid,
                S.FAULT: name,
                S.TARGET: "redis",
                S.PARAMS: "{}",
                S.T_START: int(at * MS),
                S.T_END: int((at if until is None else until) * MS),
                S.LANDED: True,
                S.EVIDENCE: "test",
                S.DESTRUCTIVE: destructive,
                S.SCOPE: scope,
                S.AFFECTED_SCANS: scans,
                S.AFFECTED_TENANTS: tenants,
            }
        )
        return fid

    def build(self) -> History:
        ops = pd.DataFrame(self.ops, columns=list(S.OP_COLUMNS))
        faults = pd.DataFrame(self.faults, columns=list(S.FAULT_COLUMNS))
        return History(ops=ops, faults=faults)


def healthy_scan(h: Hist, tenant: str = "alice", scan: str = "s1", start: float = 0) -> Hist:
    """Discover, three polls with rising progress, complete, results 200."""
    h.discover(tenant, scan, at=start)
    h.status(tenant, scan, "scanning", at=start + 100, progress=(0, 14), worker=1)
    h.status(tenant, scan, "scanning", at=start + 200, progress=(7, 14), worker=2)
    h.status(tenant, scan, "complete", at=start + 300, progress=(14, 14), worker=3)
    h.results(tenant, scan, 200, at=start + 400, worker=0)
    return h
