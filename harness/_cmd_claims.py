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

from harness._cli_options import parse_flags
from harness._cmd_matrix import add_spec_options, build_spec, default_out, render_each
from harness.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNKNOWN, UsageError

if TYPE_CHECKING:
    from harness.claims import ClaimResult, ClaimsFile
    from harness.tally import Evidence

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
    parser.add_argument("--app", default="reference_impl.app:app", metavar="MODULE:ATTR")
    parser.add_argument("--preset", default=None, help="reference preset (default claimed-fix)")
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


def _markdown(claims: ClaimsFile, results: Sequence[ClaimResult], source: str) -> str:
    from reports._markup import md_code, md_escape, md_text

    refuted = [r.claim.id for r in results if r.outcome == "REFUTED"]
    head = (
        f"REFUTED: claim(s) {', '.join(refuted)} of {len(results)}"
        if refuted
        else "ALL CONFIRMED"
        if all(r.outcome == "CONFIRMED" for r in results)
        else "INCONCLUSIVE: nothing refuted, not everything decided"
    )
    out = [f"## {md_text(claims.title)}: {md_text(head)}", "", md_text(source), ""]
    out += ["| # | claim | predicate | outcome |", "|---|---|---|---|"]
    for r in results:
        out.append(
            f"| {md_text(r.claim.id)} | {md_text(r.claim.statement)} | "
            f"{md_code(r.claim.predicate_text, in_table=True)} | **{r.outcome}** |"
        )
    out.append("")
    for r in results:
        out += [f"### {md_text(r.claim.id)}. {md_text(r.claim.statement)}: {r.outcome}", ""]
        out += [f"- {md_escape(a.evidence)}" for a in r.atoms]
        if r.witness:
            # md_escape, not md_text: the whole sentence, unclipped (it names ids, not markup)
            out.append(f"- First witness ({md_code(r.witness_class)}): {md_escape(r.witness)}")
        out += [f"- Note: {md_escape(n)}" for n in r.notes]
        out.append("")
    return "\n".join(out)


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
    from harness.matrix import REFERENCE_APP, Variant, run_matrix
    from harness.runner import print_progress
    from harness.tally import tally_runs

    if args.run:
        if args.preset or args.flag:
            raise UsageError("--run judges stored runs: drop --preset/--flag (nothing runs)")
        ev = tally_runs(args.run)
        return ev, f"Judged from {len(args.run)} stored run(s): " + ", ".join(map(str, args.run))
    spec = build_spec(args, scenario=claims.scenario, seeds=claims.seeds, duration=claims.duration)
    reference = args.app.startswith("reference_impl.")
    if not reference and (args.preset or args.flag):
        raise UsageError(f"--preset/--flag apply to the reference service only, not {args.app}")
    preset = (args.preset or "claimed-fix") if reference else None
    name = preset or args.app
    variant = Variant(
        name=name, app=args.app or REFERENCE_APP, preset=preset, flags=parse_flags(args.flag)
    )
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
    )
    seeds = ", ".join(str(s) for s in spec.seeds)
    source = (
        f"Measured on {name}, scenario {spec.scenario.name}, seeds {seeds}, "
        f"{spec.duration_s:g} s active phase each; runs under {out / 'runs'}."
    )
    return result.cells[name], source


def run(args: argparse.Namespace) -> int:
    from harness.claims import judge_claims, load_claims

    claims = load_claims(args.file)
    out = args.out or default_out(f"claims-{claims.path.stem}")
    if (out / "claims.json").exists():
        raise UsageError(f"--out {out} already holds claims.json; pass another --out")
    evidence, source = _evidence(args, claims, out)
    results = judge_claims(claims.claims, evidence)
    print(format_results(results))
    out.mkdir(parents=True, exist_ok=True)
    (out / "claims.md").write_text(_markdown(claims, results, source), encoding="utf-8")
    (out / "claims.json").write_text(_json(claims, results, evidence) + "\n", encoding="utf-8")
    print(f"wrote: {out / 'claims.md'}, {out / 'claims.json'}")
    return exit_code(results)
