"""``report.md``: short enough for a pull-request comment, readable in one minute.

Order: verdict line, run summary (app, preset or contract), reasons, warnings
(also the status words the contract did not understand), class table, the worst
witness in words, one account per failing class, coverage (scan states against
faults in effect), per worker (one column per worker), timing with the
source of every value (and the calibration measurements), the kept worker logs,
faults, the seconds per phase of the run (run.json ``phases``), pointer to
``report.html`` by name (never a path on the machine that ran it).
Every value from the run directory is a code span (:func:`md_code`), so it
shows literally and cannot mention anyone or inject markup.
"""

from __future__ import annotations

import re

from reports._markup import md_code, md_text
from reports._model import (
    MAX_REASONS,
    ReportModel,
    class_line,
    class_rows,
    coverage_gaps,
    coverage_rows,
    extras_line,
    fault_rows,
    headline,
    log_items,
    summary_fields,
    time_line,
    timing_table,
    worker_rows,
)

MAX_FAULT_ROWS = 20
_THRESHOLD_REASON = re.compile(r"^\w+: \d+ > \d+ allowed$")
_NUMERIC = {"count", "opportunities", "rate", "95% CI", "excused", "start", "end"}


def _table(header: list[str], rows: list[list[str]], *, code: set[str]) -> list[str]:
    """A GFM table; columns named in ``code`` hold data and become code spans."""
    align = ["---:" if h in _NUMERIC else "---" for h in header]
    # Headers can carry service words too (the per-worker table's status columns).
    head = [md_text(h) for h in header]  # md_text escapes "|" too
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        cells = []
        for h, value in zip(header, row, strict=True):
            if h == "verdict":
                cells.append(f"**{value.upper()}**" if value != "pass" else value)
            elif h in code:
                cells.append(md_code(value, in_table=True) if value else "")
            else:
                cells.append(md_text(value))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _timeline(model: ReportModel) -> list[str]:
    """The ops of the worst witness's scan around it, in time order, workers named."""
    t = model.timeline
    if t is None or not len(t):
        return []
    header = ["t (s)", "kind", "tenant", "worker", "answer", ""]
    rows = [
        [f"{r.t_s:.2f}", *map(str, (r.kind, r.tenant, r.worker, r.answer))]
        + (["<- witness"] if r.witness else [""])
        for r in t.itertuples(index=False)
    ]
    lead = "The ops of that scan around it, in time order:"
    return [lead, "", *_table(header, rows, code={"kind", "tenant", "answer"}), ""]


def _workers(model: ReportModel) -> list[str]:
    """Per worker (one column each): ops served, outcomes, answers, and which served the
    recorded witnesses."""
    header, rows = worker_rows(model)
    if not rows:
        return []
    return ["### Per worker", "", *_table(header, rows, code=set()), ""]


def _coverage(model: ReportModel) -> list[str]:
    """Scan states against the faults in effect, and what was not exercised."""
    header, rows = coverage_rows(model)
    out = [
        "### Coverage",
        "",
        "Ops (scans) per scan state, by the fault in effect when they were sent "
        "(`none`: no fault; `-`: not exercised).",
        "",
        *_table(header, rows, code=set()),
        "",
    ]
    gaps = coverage_gaps(model)
    if gaps:
        out += [f"- {md_text(g)}" for g in gaps] + [""]
    return out


def _timing(model: ReportModel) -> list[str]:
    """Every timing value and where it came from; the calibration measurements."""
    header, rows = timing_table(model)
    if not rows:
        return []
    out = ["### Timing", "", *_table(header, rows, code={"setting", "source"}), ""]
    if model.calibration:
        measured = " · ".join(f"{md_text(k)} {md_code(v)}" for k, v in model.calibration)
        out += [f"Calibration: {measured}", ""]
    return out


def _logs(model: ReportModel) -> list[str]:
    """The worker logs kept in the run directory, linked relative to it."""
    items = log_items(model)
    if not items:
        return []
    out = ["### Worker logs", ""]
    out += [f"- [{md_code(path)}]({path}): {md_text(what)}" for path, what in items]
    return [*out, ""]


def _time(model: ReportModel) -> list[str]:
    """The footer line: seconds per phase of the run (run.json ``phases``)."""
    items = time_line(model)
    if not items:
        return []
    return ["Time: " + " · ".join(f"{md_text(label)} {md_code(s)}" for label, s in items), ""]


def render_markdown(model: ReportModel) -> str:
    word, why = headline(model)
    run = model.run
    out = [f"## {word}: {md_text(why)}", ""]
    summary = " · ".join(
        f"{i.label} {md_code(i.value)}" if i.data else md_text(i.value)
        for i in summary_fields(model)
    )
    out += [f"**scanproof run:** {summary}", ""]
    # "<class>: 3 > 0 allowed" only repeats the table; other reasons say what it cannot.
    reasons = [r for r in run.verdict.reasons if not _THRESHOLD_REASON.match(r)]
    if reasons:
        shown = reasons[:MAX_REASONS]
        out += [f"- {md_text(r)}" for r in shown]
        if len(reasons) > len(shown):
            out.append(f"- ... and {len(reasons) - len(shown)} more (see verdict.json)")
        out.append("")
    if run.verdict.notes:
        out += [f"- Note: {md_text(n)}" for n in run.verdict.notes]
        out.append("")
    warnings = [*model.understanding, *run.info.warnings, *run.notes]
    if warnings:
        shown_w = warnings[:MAX_REASONS]
        out += [f"> Warning: {md_text(w)}" for w in shown_w]
        if len(warnings) > len(shown_w):
            out.append(f"> ... and {len(warnings) - len(shown_w)} more (see run.json)")
        out.append("")
    header, rows = class_rows(model)
    out += [*_table(header, rows, code={"class"}), ""]
    if model.worst is not None:
        first = model.accounts[model.worst][0]
        rate = md_text(class_line(model, model.worst))
        out += [
            f"### Worst witness: {md_code(model.worst)}, {rate}",
            "",
            first.markdown(),
            "",
            *_timeline(model),
        ]
    failing = model.failing()
    if failing:
        out += ["### Failing classes", ""]
        for name in failing:
            extra = extras_line(model, name)
            line = f"- **{md_text(name)}**: {md_text(class_line(model, name))}"
            line += f"; {md_text(extra)}." if extra else "."
            accounts = model.accounts.get(name) or ()
            if accounts and name != model.worst:
                line += " First witness: " + accounts[0].markdown()
            elif accounts:
                line += " First witness: see above."
            out.append(line)
        out.append("")
    crashed = model.crashed()
    if crashed:
        out += ["### Classes without a verdict", ""]
        for name in crashed:
            out.append(f"- **{md_text(name)}**: {md_text(class_line(model, name))}")
        out.append("")
    moot = model.inapplicable()
    if moot:
        out += ["### Not applicable to this service", ""]
        for name in moot:
            why = model.run.verdict.classes[name].not_applicable
            out.append(f"- **{md_text(name)}**: {md_text(why)}")
        out.append("")
    out += _coverage(model)
    out += _workers(model)
    out += _timing(model)
    out += _logs(model)
    header, rows = fault_rows(model)
    out += [f"### Faults ({len(rows)})", ""]
    if rows:
        shown_rows = rows[:MAX_FAULT_ROWS]
        out += _table(header, shown_rows, code={"id", "fault", "target", "evidence"})
        if len(rows) > len(shown_rows):
            out.append(f"\n... and {len(rows) - len(shown_rows)} more in report.html.")
    else:
        out.append("No faults were injected.")
    out += ["", *_time(model)]
    out += [
        # never a path on the machine that ran it: the reader has the run directory
        # (a CI artifact), not that machine
        f"Plots, coverage, every witness in words and the per-worker table: `report.html` "
        f"in the run directory {md_code(run.run_dir.name)}.",
        "",
    ]
    return "\n".join(out)
