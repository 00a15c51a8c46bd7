"""Render a run directory into its report files.

>>> report = render_run(Path("runs/2026-11-02T10-00-00"))  # doctest: +SKIP
>>> report.verdict  # doctest: +SKIP
'fail'
>>> print(report.markdown.read_text().splitlines()[0])  # doctest: +SKIP
## FAIL: 2 of 8 anomaly classes over their threshold

Writes, next to the run's own files: ``report.md`` (pull-request sized),
``report.html`` (self-contained), ``junit.xml`` and the three plot PNGs. When
``GITHUB_STEP_SUMMARY`` names a file, ``report.md`` is appended to it.
The verdict shown is the one in ``verdict.json``; nothing is re-judged here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import schema as S
from harness.errors import UsageError
from reports._html import render_html
from reports._junit import render_junit
from reports._load import load_run
from reports._markdown import render_markdown
from reports._model import build_model
from reports.plots import latency_plot, rates_plot, status_plot

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
JUNIT_XML = "junit.xml"
PLOT_STATUS = "plot_status.png"
PLOT_RATES = "plot_rates.png"
PLOT_LATENCY = "plot_latency.png"
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


def _thresholds(given: Mapping[str, int] | None, record: Mapping[str, object]) -> dict[str, int]:
    source = "thresholds"
    if given is None:
        # The runner records the thresholds it judged with, so the tables agree with verdict.json.
        found = record.get("thresholds")
        given, source = (found, "run.json thresholds") if isinstance(found, Mapping) else ({}, "")
    limits: dict[str, int] = {}
    for name, value in given.items():
        if name not in S.ANOMALY_CLASSES:
            raise UsageError(
                f"{source}: unknown anomaly class {name!r}; "
                f"use one of {', '.join(S.ANOMALY_CLASSES)}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{source}[{name!r}] = {value!r}: must be a whole number >= 0")
        limits[name] = value
    return limits


def _write(path: Path, data: bytes) -> Path:
    # Write-then-rename: a reader (or a crash) never sees half a report.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def render_run(
    run_dir: Path,
    *,
    thresholds: Mapping[str, int] | None = None,
    step_summary: bool = True,
) -> RenderedReport:
    """Write every report file for ``run_dir`` and return their paths.

    ``thresholds`` maps an anomaly class to the largest unexcused count that
    still passes (default: ``thresholds`` in ``run.json``, else 0); it
    decides only which classes the tables and JUnit show as failing, never the
    overall verdict. ``step_summary=False`` ignores ``GITHUB_STEP_SUMMARY``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory; pass the directory a run wrote")
    run = load_run(run_dir)
    model = build_model(run, _thresholds(thresholds, run.info.record))
    plots = {
        PLOT_STATUS: status_plot(run.ops, run.faults, t0_ns=run.t0_ns),
        PLOT_RATES: rates_plot(model.classes),
        PLOT_LATENCY: latency_plot(run.ops, run.faults, t0_ns=run.t0_ns),
    }
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
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
            summary_path = Path(target)
        except OSError as exc:  # the report itself is written; a CI nicety must not lose it
            problems.append(f"{STEP_SUMMARY_ENV}={target}: could not append ({exc})")
    return RenderedReport(
        verdict=run.verdict.verdict,
        markdown=md_path,
        html=html_path,
        junit=junit_path,
        plots=plot_paths,
        step_summary=summary_path,
        problems=tuple(problems),
    )
