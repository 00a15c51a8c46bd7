"""The fix-ablation matrix: the same seeded schedules against several variants, side by side.

A variant is an app plus (for the reference service) a preset and flag
overrides. Every variant runs the same scenario with the same seeds, one run
per (variant, seed) (:func:`harness.run.matrix.run_matrix` runs them, as its
``MatrixSpec`` says); per variant and class the counts and opportunities are
summed over the seeds and given one Wilson interval. This module holds the data
and the arithmetic only: the variants, the result and its ``matrix.json``, the
ablation effects. The reference service's variants (presets, toggles, the
ablation plan) are planned by :mod:`harness.targets.reference`.

>>> variants = app_variants(["mypkg.main:app", "mypkg.main:app"])
>>> [v.name for v in variants]
['mypkg.main:app', 'mypkg.main:app #2']
>>> result = load_matrix(Path("out/matrix.json"))  # doctest: +SKIP
>>> result.tally("mypkg.main:app", "status_not_found").tally.ci95  # doctest: +SKIP
(0.43, 0.48)

An :class:`AblationPlan` names the variants an ablation needs by role (the
preset, the preset without each fix, the bare preset, the bare preset with each
fix alone); :func:`ablation_effects` measures each fix's effect per class as a
difference of rates with Newcombe's interval.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.evidence.across_runs import ClassTally, Evidence
from harness.evidence.stats import Difference, difference
from harness.history.schema import ANOMALY_CLASSES


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One column of the comparison: an app, and for the reference service a preset and flags."""

    name: str
    app: str  # MODULE:ATTR
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
