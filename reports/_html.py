"""``report.html``: one self-contained file (inline CSS, plots as ``data:`` URIs).

Same content as ``report.md`` plus the plots, every recorded witness in words,
the worst witness's scan timeline, the per-worker table and the run record.
It opens on the verdict, a contents line, the class table and the plots; then
coverage, the witnesses (per class the first in words, the others folded in a
``<details>``), the per-worker table (pivoted: one column per worker), timing,
logs, faults. Every table sits in a horizontally scrollable box, so the page
itself never scrolls sideways.
Every value from the run directory goes through :func:`html_text`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import pandas as pd

from reports._markup import html_text as esc
from reports._markup import seconds
from reports._model import (
    MAX_REASONS,
    ReportModel,
    cell,
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

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#1d1d1f}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.badge{display:inline-block;padding:.1em .6em;border-radius:4px;color:#fff;
font-weight:700;letter-spacing:.05em;margin-right:.4em}
.pass{background:#2e7d32}.fail{background:#c62828}.unknown{background:#6d6d6d}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.row-fail td{background:#fdecea}tr.row-unknown td{background:#f1f1f1}
tr.row-not td{color:#777}
tr.row-witness td{background:#fff4d6;font-weight:600}
code{background:#f4f4f6;padding:0 .25em;border-radius:3px;font-size:92%}
.summary{color:#444}.note{color:#8a5300}.account{margin:.4em 0 .8em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f9;padding:.8em;overflow:auto;font-size:12px;max-width:100%}
.scroll{overflow-x:auto;max-width:100%}td,p,li,h1,h2,h3{overflow-wrap:anywhere}
.toc{background:#f4f4f6;padding:.4em .8em;border-radius:4px;margin:.6em 0}
figure{margin:.6em 0}figcaption{color:#666;font-size:12px}
details{margin:.3em 0 .8em}summary{cursor:pointer;color:#444}
h3{font-size:1.02em;margin:1.2em 0 .3em}
"""
_NUMERIC_HEADERS = {"count", "opportunities", "rate", "95% CI", "excused", "start", "end", "t (s)"}


def _table(
    header: list[str], rows: list[list[str]], *, row_classes: list[str] | None = None
) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        tds = "".join(
            f'<td class="n">{esc(v)}</td>' if h in _NUMERIC_HEADERS else f"<td>{esc(v)}</td>"
            for h, v in zip(header, row, strict=True)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'  # a wide table scrolls, never the page


def _frame_table(frame: pd.DataFrame, *, row_classes: list[str] | None = None) -> str:
    header = [str(c) for c in frame.columns]
    rows = [[cell(v) for v in row] for row in frame.itertuples(index=False)]
    return _table(header, rows, row_classes=row_classes)


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}" title="{esc(name)}">'


def _timeline(model: ReportModel) -> str:
    if model.timeline is None or not len(model.timeline):
        return ""
    t = model.timeline
    header = ["t (s)", "kind", "tenant", "worker", "answer"]
    rows = [
        [f"{r.t_s:.3f}", str(r.kind), str(r.tenant), str(r.worker), str(r.answer)]
        for r in t.itertuples(index=False)
    ]
    marks = ["row-witness" if w else "" for w in t["witness"]]
    return "<p>The ops of that scan around it (highlighted: the witness):</p>" + _table(
        header, rows, row_classes=marks
    )


def _timing(model: ReportModel) -> list[str]:
    header, rows = timing_table(model)
    if not rows:
        return []
    parts = ['<h2 id="timing">Timing</h2>', _table(header, rows)]
    if model.calibration:
        parts += [
            "<p>Calibration measurements:</p>",
            _table(["measure", "value"], [[k, v] for k, v in model.calibration]),
        ]
    return parts


def _logs(model: ReportModel) -> list[str]:
    items = log_items(model)
    if not items:
        return []
    links = "".join(
        f'<li><a href="{esc(path)}"><code>{esc(path)}</code></a>: {esc(what)}</li>'
        for path, what in items
    )
    return ['<h2 id="logs">Worker logs</h2>', f"<ul>{links}</ul>"]


def _figure(name: str, png: bytes) -> str:
    alt = name.replace("_", " ").removesuffix(".png")
    return f"<figure>{_img(name, png, alt)}<figcaption>{esc(name)}</figcaption></figure>"


def _warnings(model: ReportModel) -> list[str]:
    """Notes and warnings; past the first few they fold, so the class table stays near the top."""
    run = model.run
    lines = [f"Note: {n}" for n in run.verdict.notes]
    lines += [f"Warning: {w}" for w in (*model.understanding, *run.info.warnings, *run.notes)]
    parts = [f'<p class="note">{esc(w)}</p>' for w in lines[:MAX_REASONS]]
    if len(lines) > MAX_REASONS:
        rest = "".join(f'<p class="note">{esc(w)}</p>' for w in lines[MAX_REASONS:])
        parts.append(
            f"<details><summary>{len(lines) - MAX_REASONS} more notes and warnings</summary>"
            f"{rest}</details>"
        )
    return parts


def _witnesses(model: ReportModel) -> list[str]:
    """Per class with witnesses: its line, where they fell, the first witness in words and
    the others folded."""
    parts: list[str] = []
    for name in model.classes["class"]:
        accounts = model.accounts.get(name) or ()
        result = model.run.verdict.classes.get(name)
        if not accounts and (result is None or not result.error):
            continue
        parts.append(
            f'<h3 id="w-{esc(name)}"><code>{esc(name)}</code>: {esc(class_line(model, name))}</h3>'
        )
        extra = extras_line(model, name)
        if extra:
            parts.append(f"<p>{esc(extra)}.</p>")
        if accounts:
            parts.append(f'<p class="account">{accounts[0].html()}</p>')
        if len(accounts) > 1:
            more = "".join(f'<li class="account">{a.html()}</li>' for a in accounts[1:])
            parts.append(
                f"<details><summary>{len(accounts) - 1} more recorded "
                f"witness{'es' if len(accounts) > 2 else ''}</summary><ol>{more}</ol></details>"
            )
    return parts


def _inapplicable(model: ReportModel) -> list[str]:
    """The classes that mean nothing for this service, each with why."""
    moot = model.inapplicable()
    if not moot:
        return []
    items = "".join(
        f"<li><code>{esc(n)}</code>: {esc(model.run.verdict.classes[n].not_applicable)}</li>"
        for n in moot
    )
    return [f"<p>Not applicable to this service:</p><ul>{items}</ul>"]


def _coverage(model: ReportModel) -> list[str]:
    header, rows = coverage_rows(model)
    parts = [
        '<h2 id="coverage">Coverage</h2>',
        "<p>Ops (and scans) per scan state, by the fault in effect when they were sent; "
        "<code>none</code>: no fault in effect, <code>-</code>: not exercised.</p>",
        _table(header, rows),
    ]
    gaps = coverage_gaps(model)
    if gaps:
        parts.append("<ul>" + "".join(f"<li>{esc(g)}</li>" for g in gaps) + "</ul>")
    return parts


def _time(model: ReportModel) -> list[str]:
    """Seconds per phase of the run (run.json ``phases``), in the run record section."""
    items = time_line(model)
    if not items:
        return []
    shown = " &middot; ".join(f"{esc(label)} <code>{esc(s)}</code>" for label, s in items)
    return [f'<p class="time">Time: {shown}</p>']


def render_html(model: ReportModel, plots: Mapping[str, bytes]) -> str:
    word, why = headline(model)
    run = model.run
    title = f"scanproof {word}: {run.info.scenario} / {model.target_label()} / seed {run.info.seed}"
    contents = [
        ("classes", "Anomaly classes"),
        ("plots", "Plots"),
        ("coverage", "Coverage"),
        ("witnesses", "Witnesses"),
        ("workers", "Per worker"),
        ("timing", "Timing"),
        ("logs", "Worker logs"),
        ("faults", "Faults"),
        ("record", "Run record"),
    ]
    if not model.timing:
        contents.remove(("timing", "Timing"))
    if not model.logs:
        contents.remove(("logs", "Worker logs"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1 id="verdict"><span class="badge {esc(model.verdict)}">{esc(word)}</span>'
        f"{esc(why)}</h1>",
        '<p class="summary">'
        + " &middot; ".join(
            f"{esc(i.label)} <code>{esc(i.value)}</code>" if i.data else esc(i.value)
            for i in summary_fields(model)
        )
        + "</p>",
        '<nav class="toc"><strong>Contents:</strong> '
        + " &middot; ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in contents)
        + "</nav>",
    ]
    reasons = run.verdict.reasons
    if reasons:
        shown = "".join(f"<li>{esc(r)}</li>" for r in reasons[:MAX_REASONS])
        parts.append(f"<ul>{shown}</ul>")
        if len(reasons) > MAX_REASONS:
            rest = "".join(f"<li>{esc(r)}</li>" for r in reasons[MAX_REASONS:])
            parts.append(
                f"<details><summary>{len(reasons) - MAX_REASONS} more reasons</summary>"
                f"<ul>{rest}</ul></details>"
            )
    parts += _warnings(model)
    header, rows = class_rows(model)
    parts += [
        '<h2 id="classes">Anomaly classes</h2>',
        _table(header, rows, row_classes=[f"row-{r[1].split()[0]}" for r in rows]),
        *_inapplicable(model),
        '<h2 id="plots">Plots</h2>',
        *(_figure(name, png) for name, png in plots.items()),
    ]
    parts += _coverage(model)
    parts.append('<h2 id="witnesses">Witnesses</h2>')
    if model.worst is not None:
        parts += [
            f"<p><strong>Worst:</strong> <code>{esc(model.worst)}</code>, "
            f"{esc(class_line(model, model.worst))}</p>",
            _timeline(model),
        ]
    witnesses = _witnesses(model)
    parts += witnesses or ["<p>No anomaly was recorded.</p>"]
    header, rows = worker_rows(model)
    parts.append('<h2 id="workers">Per worker</h2>')
    parts.append(_table(header, rows) if rows else "<p>No op was recorded.</p>")
    parts += _timing(model)
    parts += _logs(model)
    header, rows = fault_rows(model)
    parts.append(f'<h2 id="faults">Faults ({len(rows)})</h2>')
    parts.append(_table(header, rows) if rows else "<p>No faults were injected.</p>")
    record = json.dumps(run.info.record, indent=2, sort_keys=True, default=str)
    parts += [
        '<h2 id="record">Run record</h2>',
        f"<p>Run <code>{esc(run.info.status)}</code>: started {esc(run.info.started_at)}, "
        f"ended {esc(run.info.ended_at)}, {esc(seconds(run.duration_s))}; scanproof "
        f"{esc(run.info.scanproof_version)}; router {esc(run.info.router)}; run directory "
        f"<code>{esc(run.run_dir.name)}</code>.</p>",
        *_time(model),
        f"<details><summary>run.json</summary><pre>{esc(record)}</pre></details>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
