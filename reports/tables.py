"""The report's tables as pandas DataFrames: classes, workers, faults.

They display what ``verdict.json`` and the history already say; the only
arithmetic is counting and unit conversion.

>>> from harness.judging.verdict import ClassResult, decide
>>> v = decide([ClassResult(name="results_404", count=2, opportunities=40)], thresholds={})
>>> t = class_table(v)
>>> t.loc[t["class"] == "results_404", ["verdict", "count", "rate_pct"]].values.tolist()
[['fail', 2, 5.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.history import schema as S
from harness.judging.verdict import ClassResult, Verdict

_NS = 1_000_000_000
MAX_STATUS_COLUMNS = 6  # more distinct body words than this are lumped into "other"
STATUS_WORDS = ("scanning", "complete", "not_found", "failed")


def class_verdict(result: ClassResult) -> str:
    """The class's own verdict word as the judge decided it (a result no judge
    decided is decided here under the default threshold, 0)."""
    return result.verdict or result.decided(0).verdict or "unknown"


def class_table(verdict: Verdict) -> pd.DataFrame:
    """One row per anomaly class, in the canonical order.

    Columns: ``class``, ``verdict``, ``count`` (unexcused), ``opportunities``,
    ``rate_pct`` / ``ci95_low_pct`` / ``ci95_high_pct`` (NaN with no
    opportunities), ``excused``, ``threshold``, ``error``, ``exercised`` (it had
    an opportunity), ``expected`` (the run should exercise it: True, False, or
    None when the run did not say) and ``not_applicable`` (why the class means
    nothing for this service, "" when it applies), as ``verdict.json`` records them.
    """
    rows = []
    for name in S.ANOMALY_CLASSES:
        r = verdict.classes.get(name) or ClassResult.crashed(name, "missing from the verdict")
        lo, hi = r.ci95
        judged = r.opportunities > 0
        rows.append(
            {
                "class": name,
                "verdict": class_verdict(r),
                "count": r.count,
                "opportunities": r.opportunities,
                "rate_pct": r.rate * 100 if judged else np.nan,
                "ci95_low_pct": lo * 100 if judged else np.nan,
                "ci95_high_pct": hi * 100 if judged else np.nan,
                "excused": r.excused,
                "threshold": r.threshold,
                "error": r.error,
                "exercised": r.exercised,
                "expected": r.expected,
                "not_applicable": r.not_applicable,
            }
        )
    return pd.DataFrame(rows)


def _worker_label(index: int) -> str:
    return f"worker {index}" if index >= 0 else "no answer"


def worker_table(ops: pd.DataFrame, verdict: Verdict) -> pd.DataFrame:
    """Per worker index: ops served, outcomes, answers by body word and HTTP status.

    Plus, for each class with witnesses, how many of its recorded witness ops
    (at most five per class in ``verdict.json``) that worker served. Ops with no
    worker header (connection errors, timeouts) form the "no answer" row.
    """
    if not len(ops):
        return pd.DataFrame({"worker": pd.Series(dtype=object), "ops": pd.Series(dtype=int)})
    workers = ops[S.WORKER].astype("int64")
    table = pd.DataFrame({"ops": workers.value_counts()})
    outcomes = pd.crosstab(workers, ops[S.OUTCOME])
    table = table.join(outcomes.reindex(columns=list(S.OUTCOMES), fill_value=0))
    status = ops[ops[S.KIND] == "status"]
    words = status[S.BODY_STATUS].replace("", "(none)")
    common = [w for w in STATUS_WORDS if (words == w).any()]
    others = [w for w in words.value_counts().index if w not in common]
    keep = common + others[: max(0, MAX_STATUS_COLUMNS - len(common))]
    words = words.where(words.isin(keep), "other")
    if len(status):
        table = table.join(
            pd.crosstab(status[S.WORKER].astype("int64"), words).add_prefix("status ")
        )
    codes = ops[S.HTTP_STATUS].astype("int64").map(lambda c: f"HTTP {c}" if c else "no HTTP")
    table = table.join(pd.crosstab(workers, codes))
    for name in S.ANOMALY_CLASSES:
        result = verdict.classes.get(name)
        if result is None or not result.witnesses:
            continue
        served = pd.Series([w.worker for w in result.witnesses]).value_counts()
        table[f"witnesses {name}"] = served.reindex(table.index, fill_value=0)
    table = table.fillna(0).astype("int64").sort_index()
    # "no answer" last: it is not a worker, just where unanswered ops are counted
    order = [i for i in table.index if i >= 0] + [i for i in table.index if i < 0]
    table = table.loc[order]
    table.insert(0, "worker", [_worker_label(int(i)) for i in table.index])
    return table.reset_index(drop=True)


def fault_table(faults: pd.DataFrame, t0_ns: int) -> pd.DataFrame:
    """One row per fault: id, fault, target, start/end in seconds into the run, proof."""
    if not len(faults):
        return pd.DataFrame(
            columns=[
                "id",
                "fault",
                "target",
                "start_s",
                "end_s",
                "landed",
                "evidence",
                "destructive",
            ]
        )
    return pd.DataFrame(
        {
            "id": faults[S.FAULT_ID].astype(str).to_numpy(),
            "fault": faults[S.FAULT].astype(str).to_numpy(),
            "target": faults[S.TARGET].astype(str).to_numpy(),
            "start_s": ((faults[S.T_START] - t0_ns) / _NS).to_numpy(),
            "end_s": ((faults[S.T_END] - t0_ns) / _NS).to_numpy(),
            "landed": faults[S.LANDED].astype(bool).to_numpy(),
            "evidence": faults[S.EVIDENCE].fillna("").astype(str).to_numpy(),
            "destructive": faults[S.DESTRUCTIVE].astype(bool).to_numpy(),
        }
    )
