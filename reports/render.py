"""Render a run directory into its report files.

>>> report = render_run(Path("runs/2026-11-02T10-00-00"))  # doctest: +SKIP
>>> report.verdict  # doctest: +SKIP
'fail'
>>> print(report.markdown.read_text().splitlines()[0])  # doctest: +SKIP
## FAIL: 2 of 8 anomaly classes over their threshold

Writes, next to the run's own files: ``report.md`` (pull-request sized),
``report.html`` (self-contained), ``junit.xml`` and the plot PNGs (status,
rates, one timeline per anomaly class with anomalies, latency). When
``GITHUB_STEP_SUMMARY`` names a file, ``report.md`` is appended to it.
The verdict shown is the one in ``verdict.json``; nothing is re-judged here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.history.record import RUN_JSON
from harness.history.tables import SHARD_GLOB
from harness.judging.verdict import VERDICT_JSON
from reports._html import render_html
from reports._junit import render_junit
from reports._load import load_run
from reports._markdown import render_markdown
from reports._model import build_model
from reports.plots import class_timeline_plot, latency_plot, rates_plot, status_plot

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
JUNIT_XML = "junit.xml"
PLOT_STATUS = "plot_status.png"
PLOT_RATES = "plot_rates.png"
PLOT_LATENCY = "plot_latency.png"
PLOT_CLASS = "plot_class_{name}.png"  # one per anomaly class with anomalies
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedReport:
    """What :func:`render_run` wrote."""

    verdict: str  # as recorded in verdict.json ("unknown" when there is none)
    markdown: Path
    html: Path
    junit: Path
    plots: tuple[Path, ...]
    step_summary: Path | None = None  # the GITHUB_STEP_SUMMARY file appended to
    problems: tuple[str, ...] = ()  # what could not be read or written, one line each


def _write(path: Path, data: bytes) -> Path:
    # Write-then-rename: a reader (or a crash) never sees half a report.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _marker(run_name: str, end: bool = False) -> str:
    return f"<!-- {'/' if end else ''}scanproof-run {run_name} -->"


def _replace_section(text: str, run_name: str, markdown: str) -> str:
    """``text`` with the run's section (between its markers) replaced, or appended:
    re-rendering a run's report never adds it to the step summary twice.

    >>> once = _replace_section("", "r1", "## PASS")
    >>> print(_replace_section(once, "r1", "## FAIL"))
    <!-- scanproof-run r1 -->
    ## FAIL
    <!-- /scanproof-run r1 -->
    <BLANKLINE>
    """
    body = markdown if markdown.endswith("\n") else markdown + "\n"
    section = f"{_marker(run_name)}\n{body}{_marker(run_name, end=True)}\n"
    pattern = re.compile(
        re.escape(_marker(run_name)) + r"\n.*?" + re.escape(_marker(run_name, end=True)) + r"\n?",
        flags=re.DOTALL,
    )
    if pattern.search(text):
        return pattern.sub(lambda _: section, text, count=1)
    return text + ("" if not text or text.endswith("\n") else "\n") + section


def render_run(
    run_dir: Path,
    *,
    step_summary: bool = True,
) -> RenderedReport:
    """Write every report file for ``run_dir`` and return their paths.

    Every verdict word shown, the run's and each class's, is the one
    ``verdict.json`` recorded (``scanproof check --thresholds`` re-judges and
    rewrites it). When ``GITHUB_STEP_SUMMARY`` names a file, report.md goes into it
    as one section per run, replaced when the run is rendered again (other steps'
    text is kept); ``step_summary=False`` ignores the variable.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory; pass the directory a run wrote")
    if not any((run_dir / name).exists() for name in (RUN_JSON, VERDICT_JSON)) and not any(
        run_dir.glob(SHARD_GLOB)
    ):  # not a run: write nothing into it
        raise UsageError(
            f"{run_dir}: not a run directory (no {RUN_JSON}, {VERDICT_JSON} or history "
            f"shards {SHARD_GLOB}); pass the directory a run wrote"
        )
    run = load_run(run_dir)
    model = build_model(run)
    plots = {
        PLOT_STATUS: status_plot(run.ops, run.faults, t0_ns=run.t0_ns),
        PLOT_RATES: rates_plot(model.classes),
    }
    for name, anomalies in model.anomalies.items():
        plots[PLOT_CLASS.format(name=name)] = class_timeline_plot(
            name,
            anomalies,
            run.ops,
            run.faults,
            t0_ns=run.t0_ns,
            count=run.verdict.classes[name].count,
        )
    plots[PLOT_LATENCY] = latency_plot(run.ops, run.faults, t0_ns=run.t0_ns)
    for stale in run_dir.glob(PLOT_CLASS.format(name="*")):  # from an earlier verdict
        if stale.name not in plots:
            stale.unlink(missing_ok=True)
    plot_paths = tuple(_write(run_dir / name, png) for name, png in plots.items())
    markdown = render_markdown(model)
    md_path = _write(run_dir / REPORT_MD, markdown.encode("utf-8"))
    html_path = _write(run_dir / REPORT_HTML, render_html(model, plots).encode("utf-8"))
    junit_path = _write(run_dir / JUNIT_XML, render_junit(model))
    problems = list(run.notes)
    summary_path: Path | None = None
    target = os.environ.get(STEP_SUMMARY_ENV, "") if step_summary else ""
    if target:
        try:
            path = Path(target)
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            path.write_text(_replace_section(text, run_dir.name, markdown), encoding="utf-8")
            summary_path = path
        except OSError as exc:  # the report itself is written; a CI nicety must not lose it
            problems.append(f"{STEP_SUMMARY_ENV}={target}: could not write ({exc})")
    return RenderedReport(
        verdict=run.verdict.verdict,
        markdown=md_path,
        html=html_path,
        junit=junit_path,
        plots=plot_paths,
        step_summary=summary_path,
        problems=tuple(problems),
    )
