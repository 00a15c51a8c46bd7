"""``scanproof claims FILE``: decide each promise of a claims file from runs.

Runs the file's scenario (default ``mixed``) for each seed against one variant
(``--preset``/``--flag``/``--app``), or judges existing run directories with
``--run DIR`` (repeatable; nothing runs). Prints claim -> outcome -> evidence
and writes ``claims.md`` and ``claims.json`` into ``--out``.

Exit codes: 0 every claim CONFIRMED; 1 some claim REFUTED; 2 bad usage or a bad
claims file; 3 no claim refuted but some INCONCLUSIVE (too few opportunities
to decide, or a run the infrastructure broke): never a pass.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli._options import parse_flags
from harness.cli.matrix import add_spec_options, build_spec, default_out, render_each, witness_words
from harness.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNKNOWN, UsageError
from harness.targets import reference

if TYPE_CHECKING:
    from harness.evidence.across_runs import Evidence
    from harness.evidence.claims import ClaimResult, ClaimsFile

HELP = "decide the claims of a TOML file (CONFIRMED / REFUTED / INCONCLUSIVE) from runs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="claims .toml")
    parser.add_argument(
        "--run",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="judge these run directories instead of running (repeatable; summed)",
    )
    parser.add_argument("--app", default=reference.DEFAULT_APP, metavar="MODULE:ATTR")
    parser.add_argument(
        "--preset",
        default=None,
        help=f"reference preset: {', '.join(reference.PRESET_NAMES)} "
        f"(default {reference.DEFAULT_PRESET})",
    )
    parser.add_argument("--flag", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="where claims.md/json and runs go")
    add_spec_options(parser, seeds_default=None)


def exit_code(results: Sequence[ClaimResult]) -> int:
    outcomes = {r.outcome for r in results}
    if "REFUTED" in outcomes:
        return EXIT_FAIL
    if "INCONCLUSIVE" in outcomes:
        return EXIT_UNKNOWN
    return EXIT_PASS


def format_results(results: Sequence[ClaimResult]) -> str:
    """The terminal table: one block per claim."""
    lines = []
    for r in results:
        lines.append(f"[{r.outcome}] {r.claim.id}. {r.claim.statement}")
        lines.append(f"    predicate: {r.claim.predicate_text}")
        for a in r.atoms:
            lines.append(f"    {a.outcome.lower():<12} {a.evidence}")
        if r.witness:
            lines.append(f"    first witness ({r.witness_class}): {r.witness}")
        lines.extend(f"    note: {n}" for n in r.notes)
        lines.append("")
    counts = {o: sum(r.outcome == o for r in results) for o in ("CONFIRMED", "REFUTED")}
    inconclusive = len(results) - sum(counts.values())
    lines.append(
        f"{counts['CONFIRMED']} confirmed, {counts['REFUTED']} refuted, {inconclusive} inconclusive"
    )
    return "\n".join(lines)


def _json(claims: ClaimsFile, results: Sequence[ClaimResult], ev: Evidence) -> str:
    return json.dumps(
        {
            "title": claims.title,
            "file": str(claims.path),
            "runs": [str(r) for r in ev.runs],
            "problems": list(ev.problems),
            "claims": [
                {
                    "id": r.claim.id,
                    "statement": r.claim.statement,
                    "predicate": r.claim.predicate_text,
                    "tolerance": r.claim.tolerance,
                    "outcome": r.outcome,
                    "atoms": [
                        {"atom": str(a.atom), "outcome": a.outcome, "evidence": a.evidence}
                        for a in r.atoms
                    ],
                    "witness": r.witness,
                    "witness_class": r.witness_class,
                    "classes": {
                        name: {
                            "count": ev.classes[name].count,
                            "opportunities": ev.classes[name].opportunities,
                            "ci95": list(ev.classes[name].tally.ci95),
                            "excused": ev.classes[name].excused,
                        }
                        for name in r.claim.anomaly_classes
                    },
                }
                for r in results
            ],
        },
        indent=2,
    )


def _evidence(args: argparse.Namespace, claims: ClaimsFile, out: Path) -> tuple[Evidence, str]:
    from harness.evidence.across_runs import tally_runs
    from harness.evidence.matrix import Variant
    from harness.run.matrix import run_matrix
    from harness.run.runner import print_progress

    if args.run:
        if args.preset or args.flag:
            raise UsageError("--run judges stored runs: drop --preset/--flag (nothing runs)")
        ev = tally_runs(args.run, words=witness_words)
        return ev, f"Judged from {len(args.run)} stored run(s): " + ", ".join(map(str, args.run))
    app = args.app or reference.DEFAULT_APP
    flags = parse_flags(args.flag)
    reference.check_target(app, preset=args.preset, flags=flags, time_scale=args.time_scale)
    spec = build_spec(args, scenario=claims.scenario, seeds=claims.seeds, duration=claims.duration)
    preset = reference.effective_preset(app, args.preset)
    name = preset or app
    variant = Variant(name=name, app=app, preset=preset, flags=flags)
    if not args.quiet:
        print_progress(
            f"claims: {len(spec.seeds)} run(s) of {spec.scenario.name} against {name} -> {out}"
        )
    result = run_matrix(
        [variant],
        spec,
        out,
        progress=None if args.quiet else print_progress,
        render=render_each,  # few runs: a report for each is worth its second
        words=witness_words,
    )
    seeds = ", ".join(str(s) for s in spec.seeds)
    source = (
        f"Measured on {name}, scenario {spec.scenario.name}, seeds {seeds}, "
        f"{spec.duration_s:g} s active phase each; runs under {out / 'runs'}."
    )
    return result.cells[name], source


def run(args: argparse.Namespace) -> int:
    from harness.evidence.claims import judge_claims, load_claims
    from harness.run.runner import check_out_dir
    from reports.claims import claims_markdown

    claims = load_claims(args.file)
    out = args.out or default_out(f"claims-{claims.path.stem}")
    check_out_dir(out, holds="claims.json", what="claims result")  # before anything runs
    evidence, source = _evidence(args, claims, out)
    results = judge_claims(claims.claims, evidence)
    print(format_results(results))
    out.mkdir(parents=True, exist_ok=True)
    (out / "claims.md").write_text(claims_markdown(claims, results, source), encoding="utf-8")
    (out / "claims.json").write_text(_json(claims, results, evidence) + "\n", encoding="utf-8")
    print(f"wrote: {out / 'claims.md'}, {out / 'claims.json'}")
    return exit_code(results)
