"""A witness op told in plain words, from the ops of its scan and the faults around it.

The checker says *that* an op is an anomaly; the account says what a reviewer
needs to believe it: which poll, which worker, what it answered, how long after
the scan was accepted (and by which worker), what the previous poll said, and
which fault was in effect.

>>> scans = ScanIndex(run.ops)  # doctest: +SKIP
>>> describe_witness(result.witnesses[0], scans, run.faults, t0_ns=run.t0_ns).plain()
... # doctest: +SKIP
'Poll #7 of scan scan_ab12 by tenant0 was served by worker 2 at 3.41 s and answered
 not_found, 0.80 s after the scan was accepted by worker 0; the previous poll (worker 1,
 3.38 s) said scanning 0/14. Fault in effect: worker_kill worker:3 (f1). Why it counts: ...'

Every piece that came from the run directory is tagged, so each output format
escapes it its own way (:meth:`Account.markdown`, :meth:`Account.html`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from harness.history import schema as S
from harness.judging.verdict import Witness
from reports._markup import clip, html_text, md_code, md_escape, md_text

_NS = 1_000_000_000
Style = Literal["text", "value", "prose"]  # our words | a data value | free text from data
_LABEL = {"status": "Poll", "results": "Results fetch", "discover": "Discover"}
_NOUN = {"status": "poll", "results": "results fetch", "discover": "discover"}


@dataclass(frozen=True, slots=True)
class Account:
    """A sentence as tagged parts, rendered by :meth:`plain`, :meth:`markdown`, :meth:`html`."""

    parts: tuple[tuple[str, Style], ...]

    def plain(self) -> str:
        return "".join(clip(t) if s != "text" else t for t, s in self.parts)

    def markdown(self) -> str:
        out = []
        for text, style in self.parts:
            if style == "value":
                out.append(md_code(text))
            else:
                out.append(md_text(text) if style == "prose" else md_escape(text))
        return "".join(out)

    def html(self) -> str:
        out = []
        for text, style in self.parts:
            safe = html_text(clip(text) if style != "text" else text)
            out.append(f"<code>{safe}</code>" if style == "value" else safe)
        return "".join(out)


class _Builder:
    def __init__(self) -> None:
        self.parts: list[tuple[str, Style]] = []

    def text(self, s: str) -> _Builder:
        self.parts.append((s, "text"))
        return self

    def value(self, s: object) -> _Builder:
        self.parts.append((str(s), "value"))
        return self

    def prose(self, s: str) -> _Builder:
        self.parts.append((s, "prose"))
        return self

    def build(self) -> Account:
        return Account(tuple(self.parts))


class ScanIndex:
    """The ops of each scan in time order; built once per report (grouping 1M ops takes ~0.2 s)."""

    def __init__(self, ops: pd.DataFrame) -> None:
        self._ops = ops
        self._rows = ops.groupby(S.SCAN_ID, sort=False).indices if len(ops) else {}

    def ops_of(self, scan_id: str) -> pd.DataFrame:
        rows = self._rows.get(scan_id)
        if rows is None:
            return self._ops.iloc[0:0]
        return self._ops.iloc[rows].sort_values(S.T_INVOKE, kind="stable")


def _answer(row: Any) -> tuple[str, Style]:
    """What an op answered, e.g. ``scanning 0/14``, ``HTTP 404``, ``no answer (ReadTimeout)``."""
    if row[S.OUTCOME] != "ok" and int(row[S.HTTP_STATUS]) == 0:
        error = str(row[S.ERROR]) or str(row[S.OUTCOME])
        return f"no answer ({error})", "value"
    if row[S.KIND] == "status" and int(row[S.HTTP_STATUS]) >= 500:  # a 5xx has no state
        return f"HTTP {int(row[S.HTTP_STATUS])}", "value"
    if row[S.KIND] == "status":
        word = str(row[S.BODY_STATUS]) or "(no status word)"
        if bool(row[S.HAS_PROGRESS]):
            word += f" {int(row[S.COMPLETED])}/{int(row[S.TOTAL])}"
        return word, "value"
    return f"HTTP {int(row[S.HTTP_STATUS])}", "value"


def _verb(kind: str) -> str:
    return "said" if kind == "status" else "answered"


def _worker(w: int) -> str:
    return f"worker {w}" if w >= 0 else "no worker"


def _faults_part(b: _Builder, witness: Witness, faults: pd.DataFrame, t0_ns: int) -> None:
    t = witness.t_invoke_ns
    if not len(faults):
        b.text(" No fault was injected in this run.")
        return
    ends = faults[[S.T_START, S.T_END]].max(axis=1)
    now = faults[(faults[S.T_START] <= t) & (ends >= t)]
    listed = faults[faults[S.FAULT_ID].isin(witness.faults)]
    active = pd.concat([now, listed]).drop_duplicates(S.FAULT_ID)
    if len(active):
        if len(active) > len(now):  # the witness names faults of the scan's whole life
            b.text(" While the scan ran: ")
        else:
            b.text(" Fault in effect: " if len(active) == 1 else " Faults in effect: ")
        for i, f in enumerate(active.itertuples(index=False)):
            b.text("; " if i else "")
            b.value(getattr(f, S.FAULT)).text(" on ").value(getattr(f, S.TARGET))
            b.text(" (").value(getattr(f, S.FAULT_ID)).text(")")
        b.text(".")
        return
    before = faults[ends < t]
    if not len(before):
        b.text(" No fault had been injected yet.")
        return
    last = before.loc[ends[before.index].idxmax()]
    ago = (t - int(max(last[S.T_START], last[S.T_END]))) / _NS
    b.text(" No fault in effect; the last one, ").value(last[S.FAULT]).text(" on ")
    b.value(last[S.TARGET]).text(" (").value(last[S.FAULT_ID])
    b.text(f"), ended {ago:.2f} s earlier.")


def _accepted(scan_ops: pd.DataFrame) -> Any | None:
    disc = scan_ops[(scan_ops[S.KIND] == "discover") & (scan_ops[S.OUTCOME] == "ok")]
    return disc.iloc[0] if len(disc) else None


def describe_witness(
    witness: Witness, scans: ScanIndex, faults: pd.DataFrame, *, t0_ns: int
) -> Account:
    """The witness in words (see the module docstring for an example)."""
    b = _Builder()
    scan_ops = scans.ops_of(witness.scan_id)
    accepted = _accepted(scan_ops)
    row_match = scan_ops[scan_ops[S.OP] == witness.op] if witness.op else scan_ops.iloc[0:0]
    if not len(row_match):
        # No op to stand on (a stuck scan its owner never polled): tell the scan's story.
        b.text("Scan ").value(witness.scan_id)
        if accepted is not None:
            b.text(" of ").value(accepted[S.TENANT])
            b.text(f" was accepted by {_worker(int(accepted[S.WORKER]))} at ")
            b.text(f"{(int(accepted[S.T_COMPLETE]) - t0_ns) / _NS:.2f} s")
            b.text(" and its owner never polled it.")
        else:
            b.text(" has no recorded op.")
        b.text(" Why it counts: ").prose(witness.reason or "(no reason recorded)").text(".")
        _faults_part(b, witness, faults, t0_ns)
        return b.build()
    row = row_match.iloc[0]
    kind = str(row[S.KIND])
    same = scan_ops[(scan_ops[S.KIND] == kind) & (scan_ops[S.TENANT] == row[S.TENANT])]
    position = list(same[S.OP]).index(witness.op)
    t = int(row[S.T_INVOKE])
    b.text(f"{_LABEL.get(kind, kind)} #{position + 1} of scan ").value(witness.scan_id)
    b.text(" by ").value(row[S.TENANT])
    worker = int(row[S.WORKER])
    if worker >= 0:
        b.text(f" was served by {_worker(worker)}")
    elif int(row[S.HTTP_STATUS]) > 0:  # answered, but nothing named the worker
        b.text(" was served by an unnamed worker")
    else:
        b.text(" reached no worker")
    b.text(f" at {(t - t0_ns) / _NS:.2f} s and {_verb(kind)} ")
    b.parts.append(_answer(row))
    if accepted is not None:
        gap = (t - int(accepted[S.T_COMPLETE])) / _NS
        owner = str(accepted[S.TENANT])
        b.text(f", {gap:.2f} s after the scan was accepted ")
        if owner != str(row[S.TENANT]):
            b.text("for ").value(owner).text(" ")
        b.text(f"by {_worker(int(accepted[S.WORKER]))}")
    else:
        b.text(", for a scan with no recorded acceptance")
    if position > 0:
        prev = same.iloc[position - 1]
        prev_t = (int(prev[S.T_INVOKE]) - t0_ns) / _NS
        b.text(f"; the previous {_NOUN.get(kind, kind)} ({_worker(int(prev[S.WORKER]))}, ")
        b.text(f"{prev_t:.2f} s) {_verb(kind)} ")
        b.parts.append(_answer(prev))
        b.text(".")
    else:
        b.text(f"; it was this tenant's first {_NOUN.get(kind, kind)} of that scan.")
    b.text(" Why it counts: ").prose(witness.reason or "(no reason recorded)").text(".")
    _faults_part(b, witness, faults, t0_ns)
    return b.build()


def scan_timeline(
    witness: Witness, scans: ScanIndex, *, t0_ns: int, before: int = 6, after: int = 3
) -> pd.DataFrame:
    """The ops of the witness's scan around it: ``t_s``, kind, tenant, worker, answer, witness."""
    scan_ops = scans.ops_of(witness.scan_id)
    hits = [i for i, op in enumerate(scan_ops[S.OP]) if op == witness.op]
    centre = hits[0] if hits else len(scan_ops) - 1
    window = scan_ops.iloc[max(0, centre - before) : centre + after + 1]
    return pd.DataFrame(
        {
            "t_s": [(int(t) - t0_ns) / _NS for t in window[S.T_INVOKE]],
            "kind": window[S.KIND].astype(str).to_numpy(),
            "tenant": window[S.TENANT].astype(str).to_numpy(),
            "worker": [_worker(int(w)) for w in window[S.WORKER]],
            "answer": [_answer(r)[0] for _, r in window.iterrows()],
            "witness": (window[S.OP] == witness.op).to_numpy(),
        }
    )
