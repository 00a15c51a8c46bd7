"""``report.html``: one self-contained file (inline CSS, plots as ``data:`` URIs).

Same content as ``report.md`` plus the plots, every recorded witness in words,
the worst witness's scan timeline, the per-worker table and the run record.
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
    ReportModel,
    cell,
    class_line,
    class_rows,
    extras_line,
    fault_rows,
    headline,
    summary_fields,
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
tr.row-witness td{background:#fff4d6;font-weight:600}
code{background:#f4f4f6;padding:0 .25em;border-radius:3px;font-size:92%}
.summary{color:#444}.note{color:#8a5300}.account{margin:.4em 0 .8em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f9;padding:.8em;overflow:auto;font-size:12px}
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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


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


def render_html(model: ReportModel, plots: Mapping[str, bytes]) -> str:
    word, why = headline(model)
    run = model.run
    title = f"scanproof {word}: {run.info.scenario} / {run.info.preset} / seed {run.info.seed}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1><span class="badge {esc(model.verdict)}">{esc(word)}</span>{esc(why)}</h1>',
        '<p class="summary">'
        + " &middot; ".join(
            f"{esc(i.label)} <code>{esc(i.value)}</code>" if i.data else esc(i.value)
            for i in summary_fields(model)
        )
        + "</p>",
    ]
    if run.verdict.reasons:
        parts.append("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in run.verdict.reasons) + "</ul>")
    warnings = [*run.info.warnings, *run.notes]
    parts += [f'<p class="note">Warning: {esc(w)}</p>' for w in warnings]
    header, rows = class_rows(model)
    parts += [
        "<h2>Anomaly classes</h2>",
        _table(header, rows, row_classes=[f"row-{r[1]}" for r in rows]),
    ]
    if model.worst is not None:
        parts += [
            f"<h2>Worst witness: <code>{esc(model.worst)}</code>, "
            f"{esc(class_line(model, model.worst))}</h2>",
            f'<p class="account">{model.accounts[model.worst][0].html()}</p>',
            _timeline(model),
        ]
    for name in model.failing() + model.crashed():
        parts.append(f"<h2><code>{esc(name)}</code>: {esc(class_line(model, name))}</h2>")
        extra = extras_line(model, name)
        if extra:
            parts.append(f"<p>{esc(extra)}.</p>")
        accounts = model.accounts.get(name) or ()
        if accounts:
            parts.append(
                "<ol>" + "".join(f'<li class="account">{a.html()}</li>' for a in accounts) + "</ol>"
            )
    parts.append("<h2>Plots</h2>")
    for name, png in plots.items():
        parts.append(_img(name, png, name.replace("_", " ").removesuffix(".png")))
    parts += ["<h2>Per worker</h2>", _frame_table(model.workers)]
    header, rows = fault_rows(model)
    parts.append(f"<h2>Faults ({len(rows)})</h2>")
    parts.append(_table(header, rows) if rows else "<p>No faults were injected.</p>")
    record = json.dumps(run.info.record, indent=2, sort_keys=True, default=str)
    parts += [
        "<h2>Run record</h2>",
        f"<p>Started {esc(run.info.started_at)}, ended {esc(run.info.ended_at)}, "
        f"{esc(seconds(run.duration_s))}; scanproof {esc(run.info.scanproof_version)}; "
        f"router {esc(run.info.router)}; run directory <code>{esc(str(run.run_dir))}</code>.</p>",
        f"<details><summary>run.json</summary><pre>{esc(record)}</pre></details>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
