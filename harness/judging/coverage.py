"""Coverage: which scan states the run hit with which faults, with op counts.

"How much did this run test?" A verdict of ``pass`` says nothing about a fault
that never struck a scan while it was running. :func:`coverage_of` reads a
history (no contract, no judging) and counts, for each scan state, the ops
sent about scans in that state while each fault was in effect.

Scan states, from the owner's own answers, in the order a scan goes through them
(each starts at the first owner answer that says it, and never goes back, so an
anomalous answer, a ``not_found`` while the scan runs, does not move it):

``accepted``   from the discover that issued the id until an answer says more
``scanning``   the owner's first ``scanning`` answer
``complete``   the owner's first ``complete`` answer (``failed``: its first ``failed``)
``expired``    the owner's first ``not_found`` after the scan finished (retention)

A fault is *in effect* for an op about a scan when the op was sent inside the
fault's window (``t_start``..``t_end``); an instant fault (a key deletion, a
kill: ``t_end == t_start``) is in effect for the ops sent after it about a scan
that was already in the same state when it struck. Only faults that landed
count; the ``heal`` rows are not faults. ``none`` counts the ops that no fault
was in effect for.

>>> from tests.unit.history_catalogue import Hist, healthy_scan  # doctest: +SKIP
>>> h = healthy_scan(Hist()); h.fault("worker_kill", at=150, until=250)  # doctest: +SKIP
>>> cov = coverage_of(h.build())  # doctest: +SKIP
>>> cov.ops("scanning", "worker_kill"), cov.ops("complete", "worker_kill")  # doctest: +SKIP
(1, 0)
>>> coverage_shortfalls(cov, {"complete": {"worker_kill": 1}})  # doctest: +SKIP
['coverage complete x worker_kill: 0 ops, at least 1 required']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.tables import History

STATES: tuple[str, ...] = ("accepted", "scanning", "complete", "failed", "expired")
NO_FAULT = "none"  # the column of ops no fault was in effect for
ANY_FAULT = "*"  # in minimums: ops under at least one fault
COVERAGE_FORMAT = 1
_NOT_FAULTS = frozenset({"heal"})


@dataclass(frozen=True, slots=True)
class Cell:
    """Scans that were in a state while a fault was in effect, and the ops sent about them."""

    scans: int = 0
    ops: int = 0

    def to_json(self) -> dict[str, int]:
        return {"scans": self.scans, "ops": self.ops}


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """Per scan state: totals, and a :class:`Cell` per fault name (and :data:`NO_FAULT`)."""

    faults: tuple[str, ...] = ()  # fault names that landed, in the order they first struck
    totals: Mapping[str, Cell] = field(default_factory=dict)  # state -> every op in it
    cells: Mapping[tuple[str, str], Cell] = field(default_factory=dict)  # (state, fault)

    def cell(self, state: str, fault: str) -> Cell:
        return self.cells.get((state, fault), Cell())

    def ops(self, state: str, fault: str | None = None) -> int:
        """Ops about scans in ``state``: all of them, under ``fault``, or under any (``*``)."""
        total = self.totals.get(state, Cell()).ops
        if fault is None:
            return total
        if fault == ANY_FAULT:
            return total - self.cell(state, NO_FAULT).ops
        return self.cell(state, fault).ops

    def to_json(self) -> dict[str, Any]:
        """The ``coverage`` block of ``verdict.json``."""
        rows = []
        for state in STATES:
            total = self.totals.get(state, Cell())
            by_fault = {f: self.cell(state, f).to_json() for f in (*self.faults, NO_FAULT)}
            rows.append({"state": state, **total.to_json(), "faults": by_fault})
        return {"format": COVERAGE_FORMAT, "states": list(STATES), "faults": list(self.faults),
                "rows": rows}  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Coverage:
        """Read a ``coverage`` block back; what is malformed reads as not covered."""
        faults = tuple(str(f) for f in doc.get("faults") or () if isinstance(f, str))
        totals: dict[str, Cell] = {}
        cells: dict[tuple[str, str], Cell] = {}
        for row in doc.get("rows") or ():
            if not isinstance(row, Mapping) or row.get("state") not in STATES:
                continue
            state = str(row["state"])
            totals[state] = _cell(row)
            by_fault = row.get("faults")
            for name, value in by_fault.items() if isinstance(by_fault, Mapping) else ():
                if isinstance(value, Mapping):
                    cells[(state, str(name))] = _cell(value)
        return cls(faults=faults, totals=totals, cells=cells)


def _cell(value: Mapping[str, Any]) -> Cell:
    def num(key: str) -> int:
        v = value.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    return Cell(scans=num("scans"), ops=num("ops"))


def _boundaries(ops: pd.DataFrame) -> pd.DataFrame:
    """Per accepted scan: when each state began (NaN: never), the terminal word, the last op."""
    ok = ops[ops[S.OUTCOME] == "ok"]
    disc = ok[(ok[S.KIND] == "discover") & (ok[S.SCAN_ID] != "")]
    disc = disc.sort_values(S.T_INVOKE, kind="stable").drop_duplicates(S.SCAN_ID)
    scans = pd.DataFrame(
        {
            "owner": disc[S.TENANT].to_numpy(),
            "accepted": disc[S.T_INVOKE].to_numpy(dtype=float),
        },
        index=pd.Index(disc[S.SCAN_ID].to_numpy(), name=S.SCAN_ID),
    )
    about = ops[ops[S.SCAN_ID].isin(scans.index)]
    last = about.groupby(S.SCAN_ID)[[S.T_INVOKE, S.T_COMPLETE]].max().max(axis=1)
    scans["last"] = np.fmax(last.reindex(scans.index).to_numpy(dtype=float), scans["accepted"])
    answers = ok[(ok[S.KIND] != "discover") & ok[S.SCAN_ID].isin(scans.index)]
    answers = answers[
        answers[S.TENANT].to_numpy() == scans["owner"].reindex(answers[S.SCAN_ID]).to_numpy()
    ]
    words = answers[S.BODY_STATUS]

    def first(rows: pd.DataFrame) -> pd.Series:
        return rows.groupby(S.SCAN_ID)[S.T_INVOKE].min().reindex(scans.index).astype(float)

    terminal = answers[words.isin(["complete", "failed"])].sort_values(S.T_INVOKE, kind="stable")
    terminal = terminal.drop_duplicates(S.SCAN_ID).set_index(S.SCAN_ID)
    scans["terminal"] = terminal[S.T_INVOKE].reindex(scans.index).astype(float)
    scans["terminal_word"] = terminal[S.BODY_STATUS].reindex(scans.index).fillna("complete")
    t_term = scans["terminal"].reindex(answers[S.SCAN_ID]).to_numpy()
    t = answers[S.T_INVOKE].to_numpy(dtype=float)
    before = ~(t >= t_term)  # NaN terminal: every answer is before it
    scans["scanning"] = first(answers[(words == "scanning").to_numpy() & before])
    scans["expired"] = first(answers[(words == "not_found").to_numpy() & (t > t_term)])
    return scans


def _phase(t: np.ndarray, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(state, the time that state began) at times ``t`` for rows of boundaries ``b``."""
    acc, scan = b["accepted"].to_numpy(), b["scanning"].to_numpy()
    term, exp = b["terminal"].to_numpy(), b["expired"].to_numpy()
    word = b["terminal_word"].to_numpy(dtype=object)
    conds = [t >= exp, t >= term, t >= scan]
    state = np.select(conds, ["expired", word, "scanning"], default="accepted")
    start = np.select(conds, [exp, term, scan], default=acc)
    return state.astype(object), start


def _spans(b: pd.DataFrame) -> pd.DataFrame:
    """One row per (scan, state it was in): start and end times."""
    order = ["accepted", "scanning", "terminal", "expired"]
    parts = []
    times = b[order].to_numpy()
    for i, col in enumerate(order):
        start = times[:, i]
        later = times[:, i + 1 :]
        end = np.fmin.reduce(later, axis=1, initial=np.inf) if later.shape[1] else np.inf
        end = np.where(np.isinf(end), b["last"].to_numpy(), end)
        state = b["terminal_word"].to_numpy() if col == "terminal" else np.full(len(b), col)
        keep = ~np.isnan(start)
        parts.append(pd.DataFrame({S.SCAN_ID: b.index[keep], "state": state[keep],
                                   "start": start[keep], "end": end[keep]}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def coverage_of(history: History) -> Coverage:
    """Count ops (and scans) per scan state and fault in effect; see the module doc."""
    ops, faults = history.ops, history.faults
    if not len(ops):
        return Coverage()
    b = _boundaries(ops)
    about = ops[
        ops[S.SCAN_ID].isin(b.index) & ((ops[S.KIND] != "discover") | (ops[S.OUTCOME] == "ok"))
    ]
    rows = b.reindex(about[S.SCAN_ID])
    t = about[S.T_INVOKE].to_numpy(dtype=float)
    state, start = _phase(t, rows)
    scan_ids = about[S.SCAN_ID].to_numpy()
    spans = _spans(b)
    landed = (
        faults[faults[S.LANDED].astype(bool) & ~faults[S.FAULT].isin(_NOT_FAULTS)]
        if len(faults)
        else faults
    )
    names = list(dict.fromkeys(landed[S.FAULT].astype(str))) if len(landed) else []
    under_any = np.zeros(len(t), dtype=bool)
    cells: dict[tuple[str, str], Cell] = {}
    for name in names:
        mine = landed[landed[S.FAULT].astype(str) == name]
        hit = np.zeros(len(t), dtype=bool)
        struck = np.zeros(len(spans), dtype=bool)
        for s_ns, e_ns in zip(mine[S.T_START], mine[S.T_END], strict=True):
            s, e = float(s_ns), float(max(int(e_ns), int(s_ns)))
            if e > s:
                hit |= (t >= s) & (t <= e)
            else:
                hit |= (t >= s) & (start <= s)
            struck |= (spans["start"].to_numpy() <= e) & (spans["end"].to_numpy() >= s)
        under_any |= hit
        for st in STATES:
            n_ops = int((hit & (state == st)).sum())
            n_scans = int(
                spans.loc[struck & (spans["state"] == st).to_numpy(), S.SCAN_ID].nunique()
            )
            if n_ops or n_scans:
                cells[(st, name)] = Cell(scans=n_scans, ops=n_ops)
    totals: dict[str, Cell] = {}
    for st in STATES:
        in_state = state == st
        totals[st] = Cell(scans=int(pd.unique(scan_ids[in_state]).size), ops=int(in_state.sum()))
        calm = in_state & ~under_any
        if calm.any():
            cells[(st, NO_FAULT)] = Cell(
                scans=int(pd.unique(scan_ids[calm]).size), ops=int(calm.sum())
            )
    return Coverage(faults=tuple(names), totals=totals, cells=cells)


def _minimum(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(
            f"coverage minimum {key} = {value!r}: expected a whole number of ops >= 0 "
            "(e.g. scanning.worker_kill = 5)"
        )
    return value


def _flatten(minimums: Mapping[str, object]) -> list[tuple[str, str | None, int]]:
    """(state, fault or None, minimum ops) from ``{state: n}``, ``{state: {fault: n}}``
    (TOML's ``scanning.worker_kill = 5``) or ``{"scanning.worker_kill": n}``."""
    out: list[tuple[str, str | None, int]] = []
    for key, value in minimums.items():
        state, _, fault = str(key).partition(".")
        if state not in STATES:
            raise UsageError(
                f"coverage minimum {key!r}: unknown scan state {state!r}; "
                f"use one of {', '.join(STATES)}"
            )
        if isinstance(value, Mapping):
            if fault:
                raise UsageError(f"coverage minimum {key!r}: nest at most state.fault = N")
            out += [(state, str(f), _minimum(f"{state}.{f}", n)) for f, n in value.items()]
        else:
            out.append((state, fault or None, _minimum(str(key), value)))
    return out


def coverage_shortfalls(coverage: Coverage, minimums: Mapping[str, object]) -> list[str]:
    """One line per minimum the run did not reach; ``[]`` when every one was met.

    ``minimums`` maps a state to a number of ops (``scanning = 50``), or a state
    to faults with numbers (``scanning.worker_kill = 5``; ``scanning."*" = 5``:
    under any fault; ``scanning.none = 5``: under none). A key naming no scan
    state, or a value that is not a whole number >= 0, is a
    :class:`~harness.errors.UsageError`.

    >>> cov = Coverage(totals={"scanning": Cell(2, 9)}, cells={("scanning", "none"): Cell(2, 9)})
    >>> coverage_shortfalls(cov, {"scanning": 5, "complete": 1})
    ['coverage complete: 0 ops, at least 1 required']
    >>> coverage_shortfalls(cov, {"scanning": {"worker_kill": 2, "*": 1}})
    ['coverage scanning x worker_kill: 0 ops, at least 2 required', \
'coverage scanning x any fault: 0 ops, at least 1 required']
    """
    lines = []
    for state, fault, need in _flatten(minimums):
        have = coverage.ops(state, fault)
        if have < need:
            what = (
                state
                if fault is None
                else f"{state} x {'any fault' if fault == ANY_FAULT else fault}"
            )
            lines.append(f"coverage {what}: {have} ops, at least {need} required")
    return lines
