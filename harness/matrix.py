"""The fix-ablation matrix: the same seeded schedules against several variants, side by side.

A variant is an app plus (for the reference service) a preset and flag
overrides. Every variant runs the same scenario with the same seeds, one
:func:`~harness.runner.run_chaos` per (variant, seed); per variant and class the
counts and opportunities are summed over the seeds and given one Wilson interval.

>>> variants = preset_variants(["pre-fix", "claimed-fix"])
>>> [v.name for v in variants]
['pre-fix', 'claimed-fix']
>>> spec = MatrixSpec(scenario=get_scenario("mixed"), seeds=(0, 1))  # doctest: +SKIP
>>> result = run_matrix(variants, spec, Path("out"))  # doctest: +SKIP
>>> result.cells["claimed-fix"].classes["status_not_found"].tally.ci95  # doctest: +SKIP
(0.43, 0.48)

``ablation_variants("claimed-fix")`` plans the ablation: the preset, the preset
with each of its fixes switched off, the preset with every fix off (``pre-fix``)
and that with each fix switched on alone; :func:`ablation_effects` measures each
fix's effect per class as a difference of rates with Newcombe's interval.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contract import Contract
from harness.errors import InfrastructureError, UsageError
from harness.scenario import Scenario
from harness.schema import ANOMALY_CLASSES
from harness.stats import Difference, difference
from harness.tally import ClassTally, Evidence, tally_runs

REFERENCE_APP = "reference_impl.app:app"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One column of the comparison: an app, and for the reference service a preset and flags."""

    name: str
    app: str = REFERENCE_APP
    preset: str | None = None
    flags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_") or "variant"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app": self.app,
            "preset": self.preset,
            "flags": dict(self.flags),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixSpec:
    """What every run of the matrix shares (``None``: the scenario's or the app's own)."""

    scenario: Scenario
    seeds: tuple[int, ...] = (0,)
    duration_s: float | None = None
    workers: int | None = None
    router: str = "round-robin"
    redis: str = "embedded"
    tenants: int | None = None
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    time_scale: float | None = None
    contract: Contract = field(default_factory=Contract)


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixRun:
    variant: str
    seed: int
    run_dir: Path
    status: str  # complete | interrupted | crashed | failed (no verdict)
    verdict: str  # pass | fail | unknown
    seconds: float
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixResult:
    """Per variant (by name) the evidence summed over its seeds."""

    scenario: str
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    runs: tuple[MatrixRun, ...]
    cells: Mapping[str, Evidence]

    def tally(self, variant: str, anomaly_class: str) -> ClassTally:
        return self.cells[variant].classes[anomaly_class]

    @property
    def failed_runs(self) -> tuple[MatrixRun, ...]:
        return tuple(r for r in self.runs if r.error)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seeds": list(self.seeds),
            "variants": [v.to_json() for v in self.variants],
            "runs": [{**dataclasses.asdict(r), "run_dir": str(r.run_dir)} for r in self.runs],
            "cells": {
                name: {
                    "problems": list(ev.problems),
                    "classes": {
                        c: {
                            **dataclasses.asdict(t),
                            "rate": round(t.tally.rate, 6),
                            "ci95": [round(x, 6) for x in t.tally.ci95],
                        }
                        for c, t in ev.classes.items()
                    },
                }
                for name, ev in self.cells.items()
            },
        }


def load_matrix(path: Path) -> MatrixResult:
    """Read ``matrix.json`` (or the directory holding it) back into a :class:`MatrixResult`."""
    path = Path(path)
    file = path / "matrix.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file}: cannot read a matrix from it ({exc})") from exc
    try:
        fields = {f.name for f in dataclasses.fields(ClassTally)}
        cells = {
            name: Evidence(
                classes={
                    c: ClassTally(**{k: v for k, v in t.items() if k in fields})
                    for c, t in cell["classes"].items()
                },
                problems=tuple(cell["problems"]),
            )
            for name, cell in data["cells"].items()
        }
        return MatrixResult(
            scenario=str(data["scenario"]),
            seeds=tuple(data["seeds"]),
            variants=tuple(Variant(**v) for v in data["variants"]),
            runs=tuple(MatrixRun(**{**r, "run_dir": Path(r["run_dir"])}) for r in data["runs"]),
            cells=cells,
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{file}: not a matrix.json scanproof wrote (missing {exc})") from exc


# --- planning variants ----------------------------------------------------


def _reference_flags() -> Any:
    from reference_impl import flags as F

    return F


def preset_variants(presets: Sequence[str], *, app: str = REFERENCE_APP) -> list[Variant]:
    """One variant per reference preset; unknown names raise UsageError listing the valid ones."""
    F = _reference_flags()
    out = []
    for preset in presets:
        if preset not in F.PRESETS:
            raise UsageError(f"--presets {preset!r}: no such preset; valid: {', '.join(F.PRESETS)}")
        out.append(Variant(name=preset, app=app, preset=preset))
    return out


def toggle_variant(base: str, flag: str) -> Variant:
    """``base`` with one flag flipped (a boolean negated, the retry policy swapped)."""
    F = _reference_flags()
    if flag not in F.FLAG_NAMES:
        raise UsageError(f"--toggle {flag!r}: no such flag; valid: {', '.join(F.FLAG_NAMES)}")
    current = getattr(F.PRESETS[base], flag)
    if isinstance(current, bool):
        value: Any = not current
        name = f"{base} {'+' if value else '-'}{flag}"
    else:
        value = next(p for p in F.RETRY_POLICY_NAMES if p != current)
        name = f"{base} {flag}={value}"
    return Variant(name=name, preset=base, flags={flag: value})


def app_variants(apps: Sequence[str]) -> list[Variant]:
    """One variant per ``--app`` (their names: the app strings, made unique)."""
    seen: dict[str, int] = {}
    out = []
    for app in apps:
        if ":" not in app:
            raise UsageError(f"--app {app!r}: expected MODULE:ATTR, e.g. mypkg.main:app")
        seen[app] = seen.get(app, 0) + 1
        name = app if seen[app] == 1 else f"{app} #{seen[app]}"
        out.append(Variant(name=name, app=app))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AblationPlan:
    """The variants an ablation of ``preset`` needs, by role."""

    preset: str
    bare: str  # the preset with every fix off (a preset name when one matches)
    fixes: tuple[str, ...]
    without: Mapping[str, str]  # fix -> variant name: the preset with that fix off
    alone: Mapping[str, str]  # fix -> variant name: bare with only that fix on


def ablation_variants(preset: str) -> tuple[list[Variant], AblationPlan]:
    """Plan the ablation of ``preset``'s fixes (see the module docstring)."""
    F = _reference_flags()
    if preset not in F.PRESETS:
        raise UsageError(f"--ablate {preset!r}: no such preset; valid: {', '.join(F.PRESETS)}")
    flags = F.PRESETS[preset]
    fixes = tuple(
        f.name for f in F.FLAG_FIELDS if f.metadata["kind"] == "fix" and getattr(flags, f.name)
    )
    if not fixes:
        raise UsageError(f"--ablate {preset}: that preset switches no fix on; try claimed-fix")
    off = {fix: False for fix in fixes}
    bare_flags = F.resolve_flags(preset, off)
    bare_preset = next((p for p, v in F.PRESETS.items() if v == bare_flags), None)
    variants = [Variant(name=preset, preset=preset)]
    without = {}
    for fix in fixes:
        v = Variant(name=f"{preset} -{fix}", preset=preset, flags={fix: False})
        variants.append(v)
        without[fix] = v.name
    if bare_preset is not None:
        bare = Variant(name=bare_preset, preset=bare_preset)
    else:
        bare = Variant(name=f"{preset} -all fixes", preset=preset, flags=off)
    variants.append(bare)
    alone = {}
    for fix in fixes:
        v = Variant(name=f"{bare.name} +{fix}", preset=bare.preset, flags={**bare.flags, fix: True})
        variants.append(v)
        alone[fix] = v.name
    plan = AblationPlan(preset=preset, bare=bare.name, fixes=fixes, without=without, alone=alone)
    return variants, plan


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """How much less of ``anomaly_class`` a fix leaves, measured two ways.

    ``removal``: rate with the fix switched off minus rate of the full preset;
    ``addition``: rate of the bare preset minus rate with only this fix on.
    Positive means the fix removes anomalies; an interval containing 0 is
    "no measurable effect".
    """

    fix: str
    anomaly_class: str
    removal: Difference
    addition: Difference


def ablation_effects(result: MatrixResult, plan: AblationPlan) -> tuple[Effect, ...]:
    out = []
    for fix in plan.fixes:
        for name in ANOMALY_CLASSES:
            full = result.tally(plan.preset, name).tally
            without = result.tally(plan.without[fix], name).tally
            bare = result.tally(plan.bare, name).tally
            alone = result.tally(plan.alone[fix], name).tally
            out.append(
                Effect(
                    fix=fix,
                    anomaly_class=name,
                    removal=difference(without, full),
                    addition=difference(bare, alone),
                )
            )
    return tuple(out)


# --- running --------------------------------------------------------------


def _options(variant: Variant, spec: MatrixSpec, seed: int, out: Path) -> Any:
    from harness.runner import RunOptions

    reference = variant.app.startswith("reference_impl.")
    return RunOptions(
        scenario=spec.scenario,
        app=variant.app,
        preset=variant.preset if reference else None,
        flags=dict(variant.flags) if reference else {},
        seed=seed,
        workers=spec.workers,
        router=spec.router,
        redis=spec.redis,
        duration_s=spec.duration_s,
        tenants=spec.tenants,
        retention_s=spec.retention_s,
        scan_deadline_s=spec.scan_deadline_s,
        time_scale=spec.time_scale if reference else None,
        contract=spec.contract,
        out=out,
    )


def _headline(evidence: Evidence) -> str:
    worst = sorted(
        (c for c in evidence.classes.values() if c.count),
        key=lambda c: c.tally.rate,
        reverse=True,
    )[:3]
    if not worst:
        return "no unexcused anomaly"
    return ", ".join(f"{c.name} {c.tally.rate * 100:.1f}%" for c in worst)


def run_matrix(
    variants: Sequence[Variant],
    spec: MatrixSpec,
    out: Path,
    *,
    progress: Progress | None = None,
    render: Callable[[Path], None] | None = None,
) -> MatrixResult:
    """Run every (variant, seed) into ``out/runs/`` and sum each variant's evidence.

    A run the infrastructure broke is recorded (``MatrixRun.error``) and left out
    of the sums, which then carry a problem line; bad usage stops the matrix.
    ``render`` (e.g. :func:`reports.render_run`) is called on each run directory.
    """
    from harness.runner import run_chaos

    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise UsageError(f"variant names must be unique, got {names}")
    if not variants or not spec.seeds:
        raise UsageError("a matrix needs at least one variant and one seed")
    total = len(variants) * len(spec.seeds)
    runs: list[MatrixRun] = []
    cells: dict[str, Evidence] = {}
    for variant in variants:
        dirs: list[Path] = []
        problems: list[str] = []
        for seed in spec.seeds:
            run_dir = out / "runs" / f"{variant.slug}-s{seed}"
            started = time.monotonic()
            try:
                result = run_chaos(_options(variant, spec, seed, run_dir))
            except InfrastructureError as exc:
                run = MatrixRun(
                    variant=variant.name,
                    seed=seed,
                    run_dir=run_dir,
                    status="failed",
                    verdict="unknown",
                    seconds=time.monotonic() - started,
                    error=str(exc),
                )
                problems.append(f"{variant.name} seed {seed}: no verdict ({exc})")
            else:
                run = MatrixRun(
                    variant=variant.name,
                    seed=seed,
                    run_dir=run_dir,
                    status=result.status,
                    verdict=result.verdict.verdict,
                    seconds=time.monotonic() - started,
                )
                dirs.append(run_dir)
                if render is not None:
                    render(run_dir)
            runs.append(run)
            if progress is not None:
                said = run.error or _headline(tally_runs([run_dir], words=False))
                progress(
                    f"[{len(runs)}/{total}] {variant.name} seed {seed}: "
                    f"{run.verdict.upper()} in {run.seconds:.1f} s ({said}) -> {run_dir}"
                )
        if dirs:
            evidence = tally_runs(dirs)
            cells[variant.name] = dataclasses.replace(
                evidence, problems=(*evidence.problems, *problems)
            )
        else:
            cells[variant.name] = Evidence(
                classes={
                    n: ClassTally(name=n, error="every run of this variant failed")
                    for n in ANOMALY_CLASSES
                },
                problems=tuple(problems),
            )
    return MatrixResult(
        scenario=spec.scenario.name,
        seeds=tuple(spec.seeds),
        variants=tuple(variants),
        runs=tuple(runs),
        cells=cells,
    )
