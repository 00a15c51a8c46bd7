"""Baseline comparison: is a candidate significantly worse than a baseline, class by class?

For every anomaly class a pooled two-proportion z-test asks whether the
candidate's unexcused rate is higher than the baseline's (one-sided, at
``alpha``, default 0.05), and likewise lower. A class is ``regressed``,
``improved``, ``no significant change``, ``no data`` (no opportunities on a
side) or ``unknown`` (a checker crashed).

>>> from harness.evidence.across_runs import ClassTally as T
>>> base = T(name="results_404", count=1, opportunities=300)
>>> cand = T(name="results_404", count=40, opportunities=300)
>>> compare_class("results_404", base, cand).verdict
'regressed'

``compare_runs(base_dirs, candidate_dirs)`` does the same from judged run
directories (several per side are summed, e.g. one per seed).

A side without data (no class had an opportunity: no scan was accepted) is
refused with one line (exit 3): comparing with nothing would say "no class
regressed". Two sides that ran a different app, contract, scenario or seed are
compared, with a warning each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNKNOWN, InfrastructureError, UsageError
from harness.evidence.across_runs import ClassTally, Evidence, tally_runs
from harness.evidence.stats import Tally, two_proportion_test
from harness.history.schema import ANOMALY_CLASSES

DEFAULT_ALPHA = 0.05
ClassVerdict = Literal["regressed", "improved", "no significant change", "no data", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassComparison:
    name: str
    baseline: Tally
    candidate: Tally
    p_worse: float  # one-sided p-value: the candidate's rate is higher
    p_better: float  # one-sided p-value: the candidate's rate is lower
    verdict: ClassVerdict
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    alpha: float
    classes: tuple[ClassComparison, ...]
    warnings: tuple[str, ...] = ()  # the two sides ran different scenarios or seeds
    problems: tuple[str, ...] = ()  # partial histories or failed runs on either side

    def named(self, verdict: ClassVerdict) -> list[str]:
        return [c.name for c in self.classes if c.verdict == verdict]

    @property
    def exit_code(self) -> int:
        """1 when a class regressed; else 3 when something is unknown; else 0."""
        if self.named("regressed"):
            return EXIT_FAIL
        if self.named("unknown") or self.problems:
            return EXIT_UNKNOWN
        return EXIT_PASS


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 0.5:
        raise UsageError(f"--alpha {alpha!r}: must be a significance level in (0, 0.5), e.g. 0.05")
    return alpha


def compare_class(
    name: str, base: ClassTally, cand: ClassTally, *, alpha: float = DEFAULT_ALPHA
) -> ClassComparison:
    test = two_proportion_test(base.tally, cand.tally)
    verdict: ClassVerdict
    error = base.error or cand.error
    if error:
        verdict = "unknown"
    elif not base.opportunities or not cand.opportunities:
        verdict = "no data"
    elif test.p_greater < alpha:
        verdict = "regressed"
    elif test.p_less < alpha:
        verdict = "improved"
    else:
        verdict = "no significant change"
    return ClassComparison(
        name=name,
        baseline=base.tally,
        candidate=cand.tally,
        p_worse=test.p_greater,
        p_better=test.p_less,
        verdict=verdict,
        error=error,
    )


def _same(label: str, base: Any, cand: Any) -> list[str]:
    if base == cand:
        return []
    return [f"the baseline ran {label} {base!r} but the candidate {cand!r}: compare like with like"]


def _refuse_without_data(side: str, evidence: Evidence) -> None:
    if evidence.has_data:
        return
    runs = ", ".join(map(str, evidence.runs)) or "its evidence"
    why = evidence.untested[0] if evidence.untested else f"{runs}: no class had an opportunity"
    raise InfrastructureError(
        f"the {side} has no data ({why}); nothing to compare: fix that run and run it again"
    )


def _same_fields(label: str, base: Any, cand: Any) -> list[str]:
    """Like :func:`_same` for a table of fields, naming only the fields that differ."""
    if not isinstance(base, Mapping) or not isinstance(cand, Mapping) or base == cand:
        return _same(label, base, cand)
    differ = sorted(k for k in {*base, *cand} if base.get(k) != cand.get(k))
    said = "; ".join(f"{k} {base.get(k)!r} vs {cand.get(k)!r}" for k in differ)
    return [
        f"the baseline and the candidate ran different {label}s ({said}): compare like with like"
    ]


def compare(baseline: Evidence, candidate: Evidence, *, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Compare every anomaly class of ``candidate`` with ``baseline``; InfrastructureError
    (exit 3) when either side has no data."""
    _check_alpha(alpha)
    _refuse_without_data("baseline", baseline)
    _refuse_without_data("candidate", candidate)
    missing = ClassTally(name="", error="not in the evidence")
    classes = tuple(
        compare_class(
            name,
            baseline.classes.get(name) or missing,
            candidate.classes.get(name) or missing,
            alpha=alpha,
        )
        for name in ANOMALY_CLASSES
    )
    warnings: list[str] = []
    if baseline.config and candidate.config:
        b, c = baseline.config, candidate.config
        b_scen, c_scen = b.get("scenario"), c.get("scenario")
        b_name = b_scen.get("name") if isinstance(b_scen, Mapping) else b_scen
        c_name = c_scen.get("name") if isinstance(c_scen, Mapping) else c_scen
        warnings += _same("app", b.get("app") or b.get("host"), c.get("app") or c.get("host"))
        warnings += _same_fields("contract", b.get("contract"), c.get("contract"))
        warnings += _same("scenario", b_name, c_name)
        if b_name == c_name:
            warnings += _same("schedule (scenario settings)", b_scen, c_scen)
        warnings += _same("seed", b.get("seed"), c.get("seed"))
    problems = [f"baseline: {p}" for p in baseline.problems]
    problems += [f"candidate: {p}" for p in candidate.problems]
    return Comparison(
        alpha=alpha, classes=classes, warnings=tuple(warnings), problems=tuple(problems)
    )


def compare_runs(
    baseline: Iterable[Path], candidate: Iterable[Path], *, alpha: float = DEFAULT_ALPHA
) -> Comparison:
    """:func:`compare` over judged run directories (each side summed over its directories)."""
    return compare(tally_runs(baseline), tally_runs(candidate), alpha=alpha)


def _pct(t: Tally) -> str:
    if not t.opportunities:
        return "no data"
    lo, hi = t.ci95
    return f"{t.rate * 100:5.1f}% [{lo * 100:.1f}, {hi * 100:.1f}]"


def _p(value: float) -> str:
    return "-" if value >= 1.0 else f"{value:.2g}" if value >= 1e-4 else "<0.0001"


def format_comparison(comparison: Comparison, *, baseline: str, candidate: str) -> str:
    """A fixed-width table, then which classes regressed and improved, in words."""
    lines = [
        f"baseline:  {baseline}",
        f"candidate: {candidate}",
        *(f"warning: {w}" for w in comparison.warnings),
        "",
        f"{'class':<21}{'baseline: count/n rate [95% CI]':<34}"
        f"{'candidate: count/n rate [95% CI]':<34}{'p worse':>9}{'p better':>9}  verdict",
    ]
    for c in comparison.classes:
        base = f"{c.baseline.count}/{c.baseline.opportunities} {_pct(c.baseline)}"
        cand = f"{c.candidate.count}/{c.candidate.opportunities} {_pct(c.candidate)}"
        lines.append(
            f"{c.name:<21}{base:<34}{cand:<34}{_p(c.p_worse):>9}{_p(c.p_better):>9}  {c.verdict}"
        )
    lines.append("")
    a = f"one-sided two-proportion z-test, alpha {comparison.alpha:g}"
    regressed, improved = comparison.named("regressed"), comparison.named("improved")
    lines.append(
        f"regressed ({a}): {', '.join(regressed)}" if regressed else f"no class regressed ({a})"
    )
    lines.append(f"improved: {', '.join(improved) if improved else 'none'}")
    unknown = comparison.named("unknown")
    if unknown:
        lines.append(f"unknown (a checker crashed): {', '.join(unknown)}")
    lines.extend(f"problem: {p}" for p in comparison.problems)
    return "\n".join(lines)
