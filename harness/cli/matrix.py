"""``scanproof matrix``: the same seeded schedules against several variants, side by side.

Variants: reference presets (``--presets``), a base preset with single flags
flipped (``--toggle``), several apps (``--app A --app B``), or the ablation of
a preset's fixes (``--ablate PRESET``). Writes ``matrix.json``,
``matrix.md``, ``matrix.html`` and ``heatmap.png`` into ``--out``, and every run
under ``--out/runs/``.

Exit codes: 0 the matrix ran (whatever it found); 1 with ``--gate`` when a
variant is significantly worse than the first one in some class; 2 bad usage;
3 a run failed (its variant's numbers are partial).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli._options import check_redis_spec, number, whole_number
from harness.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNKNOWN, UsageError
from harness.targets import reference

if TYPE_CHECKING:
    from harness.evidence.matrix import Variant
    from harness.run.matrix import MatrixSpec

HELP = "run variants (presets, toggled flags, apps, a fix ablation) side by side with error bars"
DEFAULT_DURATION_S = 6.0


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get("SCANPROOF_" + name.upper().replace("-", "_"), default)


def add_spec_options(parser: argparse.ArgumentParser, *, seeds_default: int | None) -> None:
    """The options every run of a matrix (or of ``claims``) shares."""
    g = parser.add_argument_group("runs")
    g.add_argument("--scenario", default=None, help="scenario name or .toml (default: mixed)")
    g.add_argument(
        "--seeds",
        type=whole_number("--seeds"),
        default=seeds_default,
        metavar="N",
        help=f"run seeds 0..N-1 per variant (default {seeds_default or 'the file says, else 1'})",
    )
    g.add_argument(
        "--duration",
        type=number("--duration"),
        default=None,
        help=f"real seconds of each run's active phase (default {DEFAULT_DURATION_S:g})",
    )
    g.add_argument(
        "--workers",
        type=whole_number("--workers"),
        default=None,
        help="worker processes (default 4)",
    )
    g.add_argument("--router", default=_env("router", "round-robin"), help="routing policy")
    g.add_argument("--redis", default=_env("redis", "embedded"), help="embedded|server|auto|URL")
    g.add_argument(
        "--tenants",
        type=whole_number("--tenants"),
        default=None,
        help="tenants (default: the scenario's)",
    )
    g.add_argument(
        "--retention-s", type=number("--retention-s"), default=None, help="override the app's meta"
    )
    g.add_argument(
        "--scan-deadline-s",
        type=number("--scan-deadline-s"),
        default=None,
        help="override the app's meta",
    )
    g.add_argument(
        "--time-scale",
        type=number("--time-scale", unit=None),
        default=None,
        help="reference service time scale",
    )
    g.add_argument("--contract", type=Path, default=None, help="contract .toml (all apps)")
    g.add_argument(
        "--run-reports", action="store_true", help="also render report.md/html for every run"
    )
    g.add_argument("--quiet", action="store_true", help="no progress lines")


def build_spec(
    args: argparse.Namespace,
    *,
    scenario: str | None = None,
    seeds: tuple[int, ...] | None = None,
    duration: float | None = None,
) -> MatrixSpec:
    """The spec from the options; file values (claims) fill what the command line left out."""
    from harness.cli.run import resolve_scenario
    from harness.run.matrix import MatrixSpec
    from harness.targets.contract import Contract, load_contract

    n = args.seeds
    if n is not None and n < 1:
        raise UsageError(f"--seeds {n}: must be at least 1")
    reference.check_time_scale(args.time_scale)
    check_redis_spec(args.redis)
    chosen_seeds = tuple(range(n)) if n is not None else seeds or (0,)
    chosen_duration = args.duration if args.duration is not None else duration
    return MatrixSpec(
        scenario=resolve_scenario(args.scenario or scenario or "mixed"),
        seeds=chosen_seeds,
        duration_s=chosen_duration if chosen_duration is not None else DEFAULT_DURATION_S,
        workers=args.workers,
        router=args.router,
        redis=args.redis,
        tenants=args.tenants,
        retention_s=args.retention_s,
        scan_deadline_s=args.scan_deadline_s,
        time_scale=args.time_scale,
        contract=load_contract(args.contract) if args.contract else Contract(),
    )


def default_out(kind: str) -> Path:
    return Path("scanproof-runs") / f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{kind}"


def witness_words(run_dir: Path) -> dict[str, str]:
    """Each class's first witness of a run in words (:func:`reports.first_witness_words`)."""
    try:
        from reports import first_witness_words
    except ImportError:  # reports is optional to the harness: tallies fall back to the reasons
        return {}
    return first_witness_words(run_dir)


def render_each(run_dir: Path) -> None:
    """Render one run's report; a report that fails to render never stops the matrix."""
    try:
        from reports import render_run

        render_run(run_dir, step_summary=False)
    except Exception as exc:
        print(f"scanproof: could not render the report of {run_dir}: {exc}", file=sys.stderr)


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("variants")
    g.add_argument(
        "--presets",
        default=None,
        metavar="A,B,...",
        help=f"reference presets, comma-separated: {', '.join(reference.PRESET_NAMES)} "
        f"(default {reference.DEFAULT_PRESET})",
    )
    g.add_argument(
        "--toggle",
        action="append",
        default=[],
        metavar="FLAG",
        help="add the variant 'base preset with FLAG flipped' (repeatable)",
    )
    g.add_argument(
        "--base", default=None, help="preset the toggles flip (default: the first of --presets)"
    )
    g.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="compare apps instead of presets (repeatable; the first is the baseline)",
    )
    g.add_argument(
        "--ablate",
        default=None,
        metavar="PRESET",
        help="switch each fix of PRESET off alone, and on alone over the bare preset",
    )
    g.add_argument(
        "--gate",
        action="store_true",
        help="exit 1 when a variant is significantly worse than the first in some class",
    )
    g.add_argument(
        "--alpha",
        type=number("--alpha", unit=None),
        default=0.05,
        help="significance level (default 0.05)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    add_spec_options(parser, seeds_default=3)


def variants_from_args(args: argparse.Namespace) -> tuple[list[Variant], object | None]:
    """The variants, and the ablation plan when ``--ablate`` was given."""
    from harness.evidence.matrix import app_variants

    presets = [p.strip() for p in args.presets.split(",") if p.strip()] if args.presets else []
    if args.ablate:
        if presets or args.app or args.toggle:
            raise UsageError("--ablate plans its own variants: drop --presets/--app/--toggle")
        variants, plan = reference.ablation_variants(args.ablate)
        return variants, plan
    apps = [a for a in args.app if a]
    if apps and any(not reference.is_reference(a) for a in apps):
        if presets or args.toggle:
            raise UsageError(
                "--presets/--toggle apply to the reference service only; with your own --app "
                "give one --app per variant"
            )
        return app_variants(apps), None
    if len(apps) > 1:
        return app_variants(apps), None
    app = apps[0] if apps else reference.DEFAULT_APP
    variants = reference.preset_variants(presets or [reference.DEFAULT_PRESET], app=app)
    base = args.base or (presets[0] if presets else reference.DEFAULT_PRESET)
    if args.toggle:
        variants += [reference.toggle_variant(base, flag, app=app) for flag in args.toggle]
    return variants, None


def run(args: argparse.Namespace) -> int:
    from harness.evidence.baseline import compare
    from harness.evidence.matrix import AblationPlan, ablation_effects
    from harness.run.matrix import run_matrix
    from harness.run.runner import check_out_dir, print_progress
    from reports.matrix import render_matrix

    variants, plan = variants_from_args(args)
    spec = build_spec(args)
    if not 0.0 < args.alpha < 0.5:
        raise UsageError(f"--alpha {args.alpha!r}: must be in (0, 0.5), e.g. 0.05")
    out = args.out or default_out(f"matrix-{spec.scenario.name}")
    check_out_dir(out, holds="matrix.json", what="matrix")  # before the first run starts
    if not args.quiet:
        print_progress(
            f"matrix: {len(variants)} variants x {len(spec.seeds)} seeds, scenario "
            f"{spec.scenario.name}, {spec.duration_s:g} s active phase each -> {out}"
        )
    result = run_matrix(
        variants,
        spec,
        out,
        progress=None if args.quiet else print_progress,
        render=render_each if args.run_reports else None,
        words=witness_words,
    )
    first = result.variants[0].name
    comparisons = [
        (v.name, compare(result.cells[first], result.cells[v.name], alpha=args.alpha))
        for v in result.variants[1:]
    ]
    effects = ablation_effects(result, plan) if isinstance(plan, AblationPlan) else ()
    doc = result.to_json()
    doc["comparisons"] = {
        name: {
            c.name: {"verdict": c.verdict, "p_worse": c.p_worse, "p_better": c.p_better}
            for c in comp.classes
        }
        for name, comp in comparisons
    }
    if isinstance(plan, AblationPlan):
        doc["ablation"] = {
            "preset": plan.preset,
            "bare": plan.bare,
            "effects": [
                {
                    "fix": e.fix,
                    "class": e.anomaly_class,
                    "removal": [e.removal.estimate, e.removal.low, e.removal.high],
                    "addition": [e.addition.estimate, e.addition.low, e.addition.high],
                    "removal_measurable": e.removal.measurable,
                    "addition_measurable": e.addition.measurable,
                }
                for e in effects
            ],
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "matrix.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    paths = render_matrix(
        result,
        out,
        comparisons=comparisons,
        plan=plan if isinstance(plan, AblationPlan) else None,
        effects=effects,
    )
    print((out / "matrix.md").read_text(encoding="utf-8"))
    print("wrote: " + ", ".join(str(p) for p in (out / "matrix.json", *paths)))
    if result.failed_runs:
        return EXIT_UNKNOWN
    if args.gate and any(comp.named("regressed") for _, comp in comparisons):
        return EXIT_FAIL
    return EXIT_PASS
