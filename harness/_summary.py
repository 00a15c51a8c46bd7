"""The summary table printed at the end of run, gate and check."""

from __future__ import annotations

from pathlib import Path

from harness.verdict import Verdict


def format_summary(verdict: Verdict, run_dir: Path) -> str:
    """A fixed-width table of every class, the verdict, and where the report is."""
    lines = [
        f"{'class':<22}{'count':>7}{'of':>8}{'rate':>9}  {'95% CI':<17}{'excused':>8}",
    ]
    for name, r in verdict.classes.items():
        if r.error:
            lines.append(f"{name:<22}{'unknown: ' + r.error[:60]}")
            continue
        lo, hi = r.ci95
        rate = f"{r.rate * 100:.1f}%" if r.opportunities else "-"
        ci = f"[{lo * 100:.1f}, {hi * 100:.1f}]%" if r.opportunities else "no data"
        lines.append(f"{name:<22}{r.count:>7}{r.opportunities:>8}{rate:>9}  {ci:<17}{r.excused:>8}")
    lines.append("")
    lines.append(f"verdict: {verdict.verdict.upper()}")
    lines.extend(f"  {reason}" for reason in verdict.reasons)
    report = run_dir / "report.md"
    lines.append(f"run directory: {run_dir}")
    if report.exists():
        lines.append(f"report: {report}  (HTML: {run_dir / 'report.html'})")
    return "\n".join(lines)
