"""Render a matrix: ``matrix.md``, a self-contained ``matrix.html`` and ``heatmap.png``.

>>> from harness.evidence.matrix import load_matrix
>>> paths = render_matrix(load_matrix(Path("out/matrix.json")), Path("out"))  # doctest: +SKIP
>>> [p.name for p in paths]  # doctest: +SKIP
['heatmap.png', 'matrix.md', 'matrix.html']

Rows are variants, columns anomaly classes, each cell the unexcused rate summed
over the seeds with its 95% Wilson interval. Optional sections: each variant
against the first (two-proportion tests) and, for an ablation, each fix's
effect per class (difference of rates with Newcombe's interval; "no measurable
effect" when it contains 0). Displays only: the numbers come from harness.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.evidence.across_runs import ClassTally
from harness.evidence.baseline import Comparison
from harness.evidence.matrix import AblationPlan, Effect, MatrixResult
from harness.evidence.stats import Difference
from harness.history.schema import ANOMALY_CLASSES
from reports._markup import html_text, md_code, md_escape, md_text

HEATMAP = "heatmap.png"
MATRIX_MD = "matrix.md"
MATRIX_HTML = "matrix.html"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def cell_text(t: ClassTally) -> str:
    """``45.9% [42.9-48.8]`` / ``0 of 984 (<=0.4%)`` / ``no data`` / ``unknown``."""
    if t.error:
        return "unknown"
    if not t.opportunities:
        return "no data"
    lo, hi = t.tally.ci95
    if t.count == 0:
        return f"0 of {t.opportunities} (<={_pct(hi)})"
    return f"{_pct(t.tally.rate)} [{lo * 100:.1f}-{hi * 100:.1f}]"


def effect_text(d: Difference) -> str:
    """A fix's effect in words: removes/adds points of rate, or no measurable effect."""
    if not d.measurable:
        return "no measurable effect"
    word = "removes" if d.estimate > 0 else "adds"
    return f"{word} {abs(d.estimate) * 100:.1f} pts [{d.low * 100:+.1f}, {d.high * 100:+.1f}]"


def heatmap_png(result: MatrixResult) -> bytes:
    """Variants x classes, coloured by rate; each cell says the rate and its interval."""
    names = [v.name for v in result.variants]
    classes = list(ANOMALY_CLASSES)
    rates = np.full((len(names), len(classes)), np.nan)
    for i, v in enumerate(names):
        for j, c in enumerate(classes):
            t = result.tally(v, c)
            if t.opportunities and not t.error:
                rates[i, j] = t.tally.rate
    fig = Figure(figsize=(2 + 1.45 * len(classes), 1.2 + 0.55 * len(names)), layout="constrained")
    ax = fig.subplots()
    masked = np.ma.masked_invalid(rates)
    image = ax.imshow(
        masked,
        cmap="Reds",
        vmin=0.0,
        vmax=max(0.05, float(np.nanmax(rates)) if not np.all(np.isnan(rates)) else 1.0),
        aspect="auto",
    )
    ax.set_facecolor("#dddddd")  # no data / unknown
    for i, v in enumerate(names):
        for j, c in enumerate(classes):
            t = result.tally(v, c)
            if t.error or not t.opportunities:
                text = "unknown" if t.error else "no data"
            else:
                lo, hi = t.tally.ci95
                text = f"{_pct(t.tally.rate)}\n[{lo * 100:.1f}-{hi * 100:.1f}]"
            dark = not np.isnan(rates[i, j]) and rates[i, j] > 0.6 * float(masked.max() or 1)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "#222222",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    seeds = ", ".join(str(s) for s in result.seeds)
    ax.set_title(
        f"Unexcused anomaly rate, scenario {result.scenario}, seeds {seeds} "
        "(cells: rate [95% Wilson interval])",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, fraction=0.03, label="rate")
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _summary(result: MatrixResult) -> list[str]:
    lines = []
    for v in result.variants:
        ev = result.cells[v.name]
        bad = [c for c in ev.classes.values() if c.count]
        unknown = [c.name for c in ev.classes.values() if c.error]
        if bad:
            worst = max(bad, key=lambda c: c.tally.rate)
            said = (
                f"{len(bad)} of {len(ANOMALY_CLASSES)} classes show unexcused anomalies; "
                f"worst {worst.name} {_pct(worst.tally.rate)}"
            )
        else:
            said = "no unexcused anomaly in any class"
        if unknown:
            said += f"; no verdict for {', '.join(unknown)}"
        lines.append(f"{v.name}: {said}")
    return lines


def _comparison_rows(
    result: MatrixResult, comparisons: Sequence[tuple[str, Comparison]]
) -> list[tuple[str, str, str]]:
    base = result.variants[0].name
    rows = []
    for name, comp in comparisons:
        worse = ", ".join(comp.named("regressed")) or "none"
        better = ", ".join(comp.named("improved")) or "none"
        rows.append((f"{name} vs {base}", worse, better))
    return rows


def render_markdown(
    result: MatrixResult,
    *,
    comparisons: Sequence[tuple[str, Comparison]] = (),
    plan: AblationPlan | None = None,
    effects: Sequence[Effect] = (),
) -> str:
    seeds = ", ".join(str(s) for s in result.seeds)
    out = [
        f"## Matrix: {len(result.variants)} variants x {len(ANOMALY_CLASSES)} anomaly classes, "
        f"scenario {md_code(result.scenario)}, seeds {seeds}",
        "",
    ]
    out += [f"- {md_text(line)}" for line in _summary(result)]
    failed = result.failed_runs
    if failed:
        out.append(f"- {len(failed)} run(s) failed and are left out of the sums:")
        out += [f"  - {md_text(f'{r.variant} seed {r.seed}: {r.error}')}" for r in failed]
    out += [
        "",
        "Cells: unexcused rate summed over the seeds [95% Wilson interval, %]; "
        "`0 of n (<=x%)` means none seen, with the upper bound.",
        "",
        "| variant | " + " | ".join(md_code(c, in_table=True) for c in ANOMALY_CLASSES) + " |",
        "|---|" + "---:|" * len(ANOMALY_CLASSES),
    ]
    for v in result.variants:
        cells = [cell_text(result.tally(v.name, c)) for c in ANOMALY_CLASSES]
        out.append(f"| {md_code(v.name, in_table=True)} | " + " | ".join(cells) + " |")
    out.append("")
    if comparisons:
        out += [
            "### Against the first variant (one-sided two-proportion z-test)",
            "",
            "| comparison | regressed | improved |",
            "|---|---|---|",
        ]
        out += [
            f"| {md_text(a)} | {md_text(b)} | {md_text(c)} |"
            for a, b, c in _comparison_rows(result, comparisons)
        ]
        out.append("")
    if plan is not None and effects:
        out += _ablation_md(plan, effects)
    out += ["### First witness per variant", ""]
    for v in result.variants:
        ev = result.cells[v.name]
        bad = [c for c in ev.classes.values() if c.count and c.first_witness]
        if not bad:
            continue
        worst = max(bad, key=lambda c: c.tally.rate)
        out.append(
            f"- **{md_text(v.name)}**, {md_code(worst.name)}: {md_escape(worst.first_witness)} "
            f"(run {md_code(worst.witness_run)})"
        )
    out += ["", "Every run directory is under `runs/`; `scanproof report DIR` renders one.", ""]
    return "\n".join(out)


def _ablation_md(plan: AblationPlan, effects: Sequence[Effect]) -> list[str]:
    out = [
        f"### Ablation of {md_code(plan.preset)}: each fix's effect per class",
        "",
        f"Removal: rate with the fix switched off minus the rate of {md_code(plan.preset)}. "
        f"Addition: rate of {md_code(plan.bare)} minus the rate with only that fix on. "
        "Positive (removes) means the fix takes anomalies away; points of rate with Newcombe's "
        "95% interval. A class neither measurement moves is left out of the fix's line.",
        "",
        "Caution: the intervals treat every op as independent, but the ops of one scan (and "
        "of one run) are correlated, so run-to-run differences look significant with one "
        "seed. Trust an effect that removal and addition agree on, over 3 or more seeds.",
        "",
    ]
    for fix in plan.fixes:
        mine = [e for e in effects if e.fix == fix]
        moved = [e for e in mine if e.removal.measurable or e.addition.measurable]
        if not moved:
            out.append(f"- {md_code(fix)}: no measurable effect on any class.")
            continue
        parts = [
            f"{md_code(e.anomaly_class)} removal {effect_text(e.removal)}, "
            f"addition {effect_text(e.addition)}"
            for e in moved
        ]
        out.append(
            f"- {md_code(fix)}: " + "; ".join(parts) + "; every other class: no measurable effect."
        )
    out.append("")
    return out


def render_html(result: MatrixResult, markdown_sections: str, heatmap: bytes) -> str:
    """The heatmap (as a data: URI) and the tables; every value escaped."""
    seeds = ", ".join(str(s) for s in result.seeds)
    head = "".join(f"<th>{html_text(c)}</th>" for c in ANOMALY_CLASSES)
    rows = []
    for v in result.variants:
        tds = "".join(
            f'<td class="n">{html_text(cell_text(result.tally(v.name, c)))}</td>'
            for c in ANOMALY_CLASSES
        )
        rows.append(f"<tr><td><code>{html_text(v.name)}</code></td>{tds}</tr>")
    data = base64.b64encode(heatmap).decode("ascii")
    summary = "".join(f"<li>{html_text(line)}</li>" for line in _summary(result))
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>scanproof matrix: {html_text(result.scenario)}</title>",
                "<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;"
                "max-width:1200px;padding:0 1em}table{border-collapse:collapse;font-size:12px}"
                "th,td{border:1px solid #ddd;padding:.25em .5em}td.n{text-align:right}"
                "img{max-width:100%}"
                "pre{background:#f7f7f9;padding:.8em;white-space:pre-wrap}</style></head><body>",
                f"<h1>Matrix: scenario <code>{html_text(result.scenario)}</code>, seeds "
                f"{html_text(seeds)}</h1>",
                f"<ul>{summary}</ul>",
                f'<img src="data:image/png;base64,{data}" alt="heatmap of anomaly rates">',
                f"<table><thead><tr><th>variant</th>{head}</tr></thead><tbody>{''.join(rows)}"
                "</tbody></table>",
                "<h2>Full report (Markdown)</h2>",
                f"<pre>{html_text(markdown_sections)}</pre>",
                "</body></html>",
            ]
        )
        + "\n"
    )


def render_matrix(
    result: MatrixResult,
    out: Path,
    *,
    comparisons: Sequence[tuple[str, Comparison]] = (),
    plan: AblationPlan | None = None,
    effects: Sequence[Effect] = (),
) -> tuple[Path, ...]:
    """Write ``heatmap.png``, ``matrix.md`` and ``matrix.html`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    png = heatmap_png(result)
    md = render_markdown(result, comparisons=comparisons, plan=plan, effects=effects)
    paths = (out / HEATMAP, out / MATRIX_MD, out / MATRIX_HTML)
    paths[0].write_bytes(png)
    paths[1].write_text(md, encoding="utf-8")
    paths[2].write_text(render_html(result, md, png), encoding="utf-8")
    return paths
