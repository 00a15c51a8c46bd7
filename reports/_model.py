"""What every output format shows, computed once: tables, witness accounts, headline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import schema as S
from reports._load import NOT_JUDGED, RunData
from reports._markup import pct, seconds
from reports.tables import class_table, fault_table, worker_table
from reports.witness import Account, ScanIndex, describe_witness, scan_timeline

MAX_REASONS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportModel:
    run: RunData
    thresholds: Mapping[str, int]
    classes: pd.DataFrame  # tables.class_table
    accounts: Mapping[str, tuple[Account, ...]]  # class -> one account per recorded witness
    worst: str | None  # the class whose first witness leads the report
    workers: pd.DataFrame
    faults: pd.DataFrame  # tables.fault_table
    timeline: pd.DataFrame | None  # the worst witness's scan around it

    @property
    def verdict(self) -> str:
        return self.run.verdict.verdict

    def failing(self) -> list[str]:
        return list(self.classes.loc[self.classes["verdict"] == "fail", "class"])

    def crashed(self) -> list[str]:
        return list(self.classes.loc[self.classes["verdict"] == "unknown", "class"])


def _worst(classes: pd.DataFrame, accounts: Mapping[str, tuple[Account, ...]]) -> str | None:
    """The class with the highest rate that has a witness; failing classes first."""
    have = classes[classes["class"].map(lambda c: bool(accounts.get(c)))]
    if not len(have):
        return None
    ranked = have.assign(
        _failing=have["verdict"] == "fail", _rate=have["rate_pct"].fillna(-1.0)
    ).sort_values(["_failing", "_rate", "count"], ascending=False, kind="stable")
    return str(ranked["class"].iloc[0])


def build_model(run: RunData, thresholds: Mapping[str, int]) -> ReportModel:
    classes = class_table(run.verdict, thresholds)
    scans = ScanIndex(run.ops)
    accounts = {
        name: tuple(
            describe_witness(w, scans, run.faults, t0_ns=run.t0_ns) for w in result.witnesses
        )
        for name, result in run.verdict.classes.items()
    }
    worst = _worst(classes, accounts)
    timeline = None
    if worst is not None:
        first = run.verdict.classes[worst].witnesses[0]
        timeline = scan_timeline(first, scans, t0_ns=run.t0_ns)
    return ReportModel(
        run=run,
        thresholds=dict(thresholds),
        classes=classes,
        accounts=accounts,
        worst=worst,
        workers=worker_table(run.ops, run.verdict),
        faults=fault_table(run.faults, run.t0_ns),
        timeline=timeline,
    )


def headline(model: ReportModel) -> tuple[str, str]:
    """(VERDICT WORD, one short clause why) - the first line of every format."""
    n = len(S.ANOMALY_CLASSES)
    failing, crashed = model.failing(), model.crashed()
    word = model.verdict.upper()
    if model.verdict == "fail":
        why = f"{len(failing)} of {n} anomaly classes over their threshold"
        if not failing:  # verdict.json was judged with thresholds other than ours
            why = "the checkers found anomalies (see the reasons)"
    elif model.verdict == "pass":
        why = f"no anomaly class over its threshold ({n} classes checked)"
    elif NOT_JUDGED in model.run.verdict.reasons:
        why = "this run was never judged (no verdict.json)"
    elif crashed:
        why = f"{len(crashed)} of {n} checkers could not decide"
    else:
        why = "the run could not be judged (infrastructure failure)"
    status = model.run.info.status
    if status not in ("complete", "unknown"):
        why += f"; run {status}, history partial"
    return word, why


@dataclass(frozen=True, slots=True)
class SummaryItem:
    """One item of the run summary line: ``label`` then ``value`` (from run.json when ``data``)."""

    label: str
    value: str
    data: bool


def summary_fields(model: ReportModel) -> list[SummaryItem]:
    """The one-line run summary: app, preset, scenario, seed, workers, Redis, ops, duration."""
    info, counts = model.run.info, model.run.op_counts
    ops = f"{counts.get('total', 0):,} ops"
    if any(o in counts for o in S.OUTCOMES):
        ops += " (" + ", ".join(f"{o} {counts.get(o, 0):,}" for o in S.OUTCOMES) + ")"
    workers = (
        SummaryItem("", f"{info.workers} workers", False)
        if info.workers.isdigit()
        else SummaryItem("workers", info.workers, True)
    )
    return [
        SummaryItem("app", info.app, True),
        SummaryItem("preset", info.preset, True),
        SummaryItem("scenario", info.scenario, True),
        SummaryItem("seed", info.seed, True),
        workers,
        SummaryItem("Redis", info.redis_backend, True),
        SummaryItem("", ops, False),
        SummaryItem("", seconds(model.run.duration_s), False),
        SummaryItem("run", info.status, True),
    ]


def class_line(model: ReportModel, name: str) -> str:
    """``3 of 40 (7.50%, 95% CI 2.58%-19.86%)``, or why there is no rate."""
    r = model.run.verdict.classes[name]
    if r.error:
        return f"no verdict: {r.error}"
    if not r.opportunities:
        return f"{r.count} of 0 (no data)"
    lo, hi = r.ci95
    return f"{r.count} of {r.opportunities:,} ({pct(r.rate)}, 95% CI {pct(lo)}-{pct(hi)})"


def extras_line(model: ReportModel, name: str) -> str:
    """Where the anomalies of a class fell relative to faults, and what was excused."""
    r = model.run.verdict.classes[name]
    bits = []
    if r.fault_windows:
        inside = ", ".join(f"{fid} x{n}" for fid, n in r.fault_windows.items())
        bits.append(f"in fault windows: {inside}")
    if r.excused:
        by = ", ".join(f"{f} {n}" for f, n in r.excused_by.items())
        bits.append(f"excused: {r.excused}" + (f" ({by})" if by else ""))
    return "; ".join(bits)


def cell(value: object) -> str:
    """A table cell as plain text: NaN says "no data", floats two decimals, bools yes/no."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return "no data" if math.isnan(value) else f"{value:.2f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    return str(value)


def class_rows(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    """The class table as display strings (header, rows)."""
    header = ["class", "verdict", "count", "opportunities", "rate", "95% CI", "excused"]
    rows = []
    for r in model.classes.itertuples(index=False):
        judged = not math.isnan(r.rate_pct)
        rows.append(
            [
                str(r[0]),
                str(r.verdict),
                cell(r.count),
                cell(r.opportunities),
                pct(r.rate_pct / 100) if judged else "no data",
                f"{pct(r.ci95_low_pct / 100)}-{pct(r.ci95_high_pct / 100)}" if judged else "",
                cell(r.excused),
            ]
        )
    return header, rows


def fault_rows(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    header = ["id", "fault", "target", "start", "end", "landed", "destructive", "evidence"]
    rows = [
        [
            str(f.id),
            str(f.fault),
            str(f.target),
            seconds(f.start_s),
            seconds(f.end_s),
            cell(bool(f.landed)),
            cell(bool(f.destructive)),
            str(f.evidence),
        ]
        for f in model.faults.itertuples(index=False)
    ]
    return header, rows
