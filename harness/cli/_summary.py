"""What run, gate and check print at the end: the summary table, ``--json``'s verdict
document, and the coverage minimums' effect on the verdict.

(The step summary, ``GITHUB_STEP_SUMMARY``, is written by :func:`reports.render_run`:
one section per run, replaced when the run is rendered again.)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.judging.verdict import VERDICT_JSON, Verdict, VerdictWord


def format_summary(verdict: Verdict, run_dir: Path) -> str:
    """A fixed-width table of every class, the verdict, and where the report is."""
    lines = [
        f"{'class':<22}{'count':>7}{'of':>8}{'rate':>9}  {'95% CI':<17}{'excused':>8}",
    ]
    for name, r in verdict.classes.items():
        if r.error:
            lines.append(f"{name:<22}{'unknown: ' + r.error[:60]}")
            continue
        if r.not_applicable:
            lines.append(f"{name:<22}not applicable: {r.not_applicable[:60]}")
            continue
        lo, hi = r.ci95
        rate = f"{r.rate * 100:.1f}%" if r.opportunities else "-"
        idle = "not exercised" if r.verdict == "unknown" else "no data"
        ci = f"[{lo * 100:.1f}, {hi * 100:.1f}]%" if r.opportunities else idle
        lines.append(f"{name:<22}{r.count:>7}{r.opportunities:>8}{rate:>9}  {ci:<17}{r.excused:>8}")
    lines.append("")
    lines.append(f"verdict: {verdict.verdict.upper()}")
    lines.extend(f"  {reason}" for reason in verdict.reasons)
    lines.extend(f"  note: {note}" for note in verdict.notes)
    report = run_dir / "report.md"
    lines.append(f"run directory: {run_dir}")
    if report.exists():
        lines.append(f"report: {report}  (HTML: {run_dir / 'report.html'})")
    return "\n".join(lines)


def verdict_document(verdict: Verdict, run_dir: Path) -> dict[str, Any]:
    """The verdict document as ``verdict.json`` holds it (with its ops, status and any
    other blocks the judge wrote), else as the verdict says it; plus ``run_dir``."""
    doc: dict[str, Any] = verdict.to_json()
    try:
        stored = json.loads((run_dir / VERDICT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    if isinstance(stored, dict) and stored.get("verdict") == verdict.verdict:
        doc = stored
    return doc | {"run_dir": str(run_dir)}


def finish(verdict: Verdict, run_dir: Path, *, as_json: bool) -> None:
    """Print the end of a run or re-judging: the summary table on stdout, or with
    ``as_json`` the verdict document on stdout and the table on stderr (so a CI step can
    pipe one into ``jq`` and still show the other)."""
    table = format_summary(verdict, run_dir)
    if as_json:
        print(table, file=sys.stderr)
        print(json.dumps(verdict_document(verdict, run_dir), indent=2))
    else:
        print(table)


def gate_coverage(run_dir: Path, verdict: Verdict, minimums: Mapping[str, Any] | None) -> Verdict:
    """Hold the run's coverage (the ``coverage`` block of verdict.json) to ``minimums``
    (``[tool.scanproof.gate.coverage]``): each shortfall is a reason, and a pass becomes
    unknown (the run tested too little to pass; a fail stays fail). verdict.json is
    rewritten to say so before any report is rendered from it."""
    if not minimums:
        return verdict
    from harness.judging.coverage import Coverage, coverage_shortfalls

    path = run_dir / VERDICT_JSON
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return verdict  # nothing judged: the verdict already says why
    block = doc.get("coverage") if isinstance(doc, dict) else None
    coverage = Coverage.from_json(block) if isinstance(block, Mapping) else Coverage()
    short = coverage_shortfalls(coverage, minimums)
    doc["coverage_minimums"] = dict(minimums)
    doc["coverage_shortfalls"] = short
    word: VerdictWord = "unknown" if short and verdict.verdict == "pass" else verdict.verdict
    judged = replace(verdict, verdict=word, reasons=(*verdict.reasons, *short))
    doc["verdict"], doc["reasons"] = judged.verdict, list(judged.reasons)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return judged
