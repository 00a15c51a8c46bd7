"""What every output format shows, computed once: tables, witness accounts, headline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.history import schema as S
from harness.history.tables import History
from harness.judging.coverage import NO_FAULT, STATES, Coverage, coverage_of
from reports._load import NOT_JUDGED, RunData
from reports._markup import pct, seconds
from reports._setup import (
    TimingRow,
    WorkerLog,
    calibration_rows,
    target_items,
    timing_rows,
    understanding_warnings,
    worker_logs,
)
from reports.tables import class_table, fault_table, worker_table
from reports.witness import Account, ScanIndex, describe_witness, scan_timeline

MAX_REASONS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportModel:
    run: RunData
    classes: pd.DataFrame  # tables.class_table
    accounts: Mapping[str, tuple[Account, ...]]  # class -> one account per recorded witness
    worst: str | None  # the class whose first witness leads the report
    workers: pd.DataFrame
    faults: pd.DataFrame  # tables.fault_table
    timeline: pd.DataFrame | None  # the worst witness's scan around it
    timing: tuple[TimingRow, ...] = ()  # every timing value with its source
    calibration: tuple[tuple[str, str], ...] = ()  # measurements, when the run calibrated
    logs: tuple[WorkerLog, ...] = ()  # the worker logs kept in workers/
    understanding: tuple[str, ...] = ()  # what the contract did not understand
    coverage: Coverage = field(default_factory=Coverage)  # scan states x faults in effect
    # class -> its anomalous ops (t_invoke_ns, worker) for the class timelines: the ops
    # verdict.json lists, else its recorded witnesses; only classes with anomalies
    anomalies: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def target(self) -> list[tuple[str, str]]:
        """(label, value): the app, and the preset (reference) or the contract file."""
        config = self.run.info.record.get("config")
        return target_items(config if isinstance(config, Mapping) else {})

    def target_label(self) -> str:
        """``preset sound`` or ``contract jobs.toml``: the second half of a report title."""
        label, value = self.target[1]
        return f"{label} {value}"

    @property
    def verdict(self) -> str:
        return self.run.verdict.verdict

    def failing(self) -> list[str]:
        return list(self.classes.loc[self.classes["verdict"] == "fail", "class"])

    def crashed(self) -> list[str]:
        """Classes without a verdict: a checker crashed, or a class it needed was not
        exercised."""
        return list(self.classes.loc[self.classes["verdict"] == "unknown", "class"])

    def inapplicable(self) -> list[str]:
        """Classes that mean nothing for this service (no tenants, no progress...)."""
        return list(self.classes.loc[self.classes["verdict"] == "not_applicable", "class"])

    def checker_errors(self) -> list[str]:
        unknown = self.classes[
            (self.classes["verdict"] == "unknown") & (self.classes["error"] != "")
        ]
        return list(unknown["class"])


def _worst(classes: pd.DataFrame, accounts: Mapping[str, tuple[Account, ...]]) -> str | None:
    """The class with the highest rate that has a witness; failing classes first."""
    have = classes[classes["class"].map(lambda c: bool(accounts.get(c)))]
    if not len(have):
        return None
    ranked = have.assign(
        _failing=have["verdict"] == "fail", _rate=have["rate_pct"].fillna(-1.0)
    ).sort_values(["_failing", "_rate", "count"], ascending=False, kind="stable")
    return str(ranked["class"].iloc[0])


def _coverage(run: RunData) -> Coverage:
    """verdict.json's coverage block; counted from the history when the verdict has none."""
    doc = run.verdict_doc.get("coverage")
    if isinstance(doc, Mapping):
        return Coverage.from_json(doc)
    return coverage_of(History(ops=run.ops, faults=run.faults))


def _anomalies(run: RunData) -> dict[str, pd.DataFrame]:
    """Per class with an unexcused anomaly: the ops to draw on its timeline."""
    out: dict[str, pd.DataFrame] = {}
    docs = run.verdict_doc.get("anomalies")
    for name, result in run.verdict.classes.items():
        if result.count <= 0:
            continue
        doc = docs.get(name) if isinstance(docs, Mapping) else None
        listed = doc.get("anomaly_ops") if isinstance(doc, Mapping) else None
        if isinstance(listed, list) and len(run.ops):
            rows = run.ops[run.ops[S.OP].isin([str(o) for o in listed])]
            frame = rows[[S.T_INVOKE, S.WORKER]].reset_index(drop=True)
        else:
            frame = pd.DataFrame(
                {
                    S.T_INVOKE: [w.t_invoke_ns for w in result.witnesses],
                    S.WORKER: [w.worker for w in result.witnesses],
                },
                dtype="int64",
            )
        out[name] = frame
    return out


def build_model(run: RunData) -> ReportModel:
    classes = class_table(run.verdict)
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
        classes=classes,
        accounts=accounts,
        worst=worst,
        workers=worker_table(run.ops, run.verdict),
        faults=fault_table(run.faults, run.t0_ns),
        timeline=timeline,
        timing=tuple(timing_rows(run.info.record)),
        calibration=tuple(calibration_rows(run.info.record)),
        logs=tuple(worker_logs(run.run_dir)),
        understanding=tuple(understanding_warnings(run.verdict_doc, run.verdict.reasons)),
        coverage=_coverage(run),
        anomalies=_anomalies(run),
    )


def headline(model: ReportModel) -> tuple[str, str]:
    """(VERDICT WORD, one short clause why) - the first line of every format."""
    moot = len(model.inapplicable())
    n = len(S.ANOMALY_CLASSES) - moot
    failing, crashed = model.failing(), model.checker_errors()
    word = model.verdict.upper()
    if model.verdict == "fail":
        why = f"{len(failing)} of {n} anomaly classes over their threshold"
        if not failing:  # a verdict.json whose classes do not say why
            why = "the checkers found anomalies (see the reasons)"
    elif model.verdict == "pass":
        why = f"no anomaly class over its threshold ({n} classes checked"
        why += f", {moot} not applicable)" if moot else ")"
    elif NOT_JUDGED in model.run.verdict.reasons:
        why = "this run was never judged (no verdict.json)"
    elif crashed:
        why = f"{len(crashed)} of {n} checkers could not decide"
    elif said := [r for r in model.run.verdict.reasons if not r.startswith("infrastructure:")]:
        why = said[0]  # the judge's own words: no scan was accepted, incomplete, not exercised
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
    """The one-line run summary: app, preset (the reference) or contract (any other app),
    scenario, seed, workers, Redis, ops, duration."""
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
        *(SummaryItem(label, value, True) for label, value in model.target),
        SummaryItem("scenario", info.scenario, True),
        SummaryItem("seed", info.seed, True),
        workers,
        SummaryItem("Redis", info.redis_backend, True),
        SummaryItem("", ops, False),
        SummaryItem("", seconds(model.run.duration_s), False),
        SummaryItem("run", info.status, True),
    ]


def time_line(model: ReportModel) -> list[tuple[str, str]]:
    """Where the run's wall time went: (label, seconds) per phase from run.json's
    ``phases``, ``[]`` when it recorded none. A run renders its report before its
    rendering ends, so that run.json holds no ``rendering`` yet: its total is then
    labelled ``before rendering`` (``scanproof report`` shows the full one later)."""
    items = [(label, f"{s:.1f} s") for label, s in model.run.info.phases]
    labels = {label for label, _ in model.run.info.phases}
    if items and items[-1][0] == "total" and "judging" in labels and "rendering" not in labels:
        items[-1] = ("total before rendering", items[-1][1])
    return items


def class_line(model: ReportModel, name: str) -> str:
    """``3 of 40 (7.50%, 95% CI 2.58%-19.86%)``, or why there is no rate."""
    r = model.run.verdict.classes[name]
    if r.not_applicable:
        return f"not applicable: {r.not_applicable}"
    if r.error:
        return f"no verdict: {r.error}"
    if not r.opportunities and r.verdict == "unknown":
        return f"{r.count} of 0 (no data: not exercised, so no verdict)"
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


def exercised_cell(exercised: bool, expected: bool | None) -> str:
    """Whether a class had opportunities, and whether the run set out to give it any."""
    if exercised:
        return "yes"
    if expected is None:
        return "no"
    return "no (expected)" if expected else "no (not required)"


def class_rows(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    """The class table as display strings (header, rows)."""
    header = ["class", "verdict", "count", "opportunities", "rate", "95% CI", "excused"]
    header.append("exercised")
    rows = []
    for r in model.classes.itertuples(index=False):
        judged = not math.isnan(r.rate_pct)
        if r.verdict == "not_applicable":  # no count, no rate: the class means nothing here
            rows.append([str(r[0]), "not applicable", "-", "-", "-", "", "-", "n/a"])
            continue
        rows.append(
            [
                str(r[0]),
                str(r.verdict),
                cell(r.count),
                cell(r.opportunities),
                pct(r.rate_pct / 100) if judged else "no data",
                f"{pct(r.ci95_low_pct / 100)}-{pct(r.ci95_high_pct / 100)}" if judged else "",
                cell(r.excused),
                exercised_cell(bool(r.exercised), r.expected),
            ]
        )
    return header, rows


def timing_table(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    """Every timing value with its source (header, rows); no rows when none was recorded."""
    return ["setting", "value", "source"], [[t.name, t.value, t.source] for t in model.timing]


def log_items(model: ReportModel) -> list[tuple[str, str]]:
    """(relative path, description) of every kept worker log."""
    return [(log.path, log.describe()) for log in model.logs]


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


def coverage_rows(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    """Scan states against faults in effect: each cell ``ops (scans)``, ``-`` for none.

    Rows are the scan states; columns every op in that state, then each fault that
    landed, then ``none`` (ops no fault was in effect for).
    """
    cov = model.coverage
    columns = [*cov.faults, NO_FAULT]
    header = ["state", "all ops", *columns]

    def show(ops: int, scans: int) -> str:
        return f"{cell(ops)} ({cell(scans)})" if ops or scans else "-"

    rows = []
    for state in STATES:
        total = cov.totals.get(state)
        row = [state, show(total.ops, total.scans) if total else "-"]
        row += [show(cov.cell(state, f).ops, cov.cell(state, f).scans) for f in columns]
        rows.append(row)
    return header, rows


def coverage_gaps(model: ReportModel) -> list[str]:
    """Scan states no fault was in effect for, and states never reached: one line each."""
    cov = model.coverage
    if not cov.totals or not any(c.ops for c in cov.totals.values()):
        return ["no scan was accepted: no scan state was exercised"]
    lines = []
    for state in STATES:
        if not cov.ops(state):
            lines.append(f"{state}: never reached")
        elif cov.faults and not cov.ops(state, "*"):
            lines.append(f"{state}: reached, but no fault was in effect")
    return lines


def worker_rows(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    """The per-worker table pivoted: one column per worker, one row per measure,
    so it fits the page however many answer words and classes it counts."""
    w = model.workers
    if not len(w) or "ops" not in w.columns:
        return [], []
    header = ["", *(str(v) for v in w["worker"])]
    rows = [[str(col), *(cell(v) for v in w[col])] for col in w.columns if col != "worker"]
    return header, rows
