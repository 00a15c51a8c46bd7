"""Running a matrix: one chaos run per (variant, seed), then each variant's evidence summed.

The variants and the result are data (:mod:`harness.evidence.matrix`); this
module holds what every run shares (:class:`MatrixSpec`) and carries the plan
out with :func:`~harness.run.runner.run_chaos`, so it lives with the other
execution code and the evidence package never starts a cluster.

>>> from harness.targets.reference import preset_variants
>>> spec = MatrixSpec(scenario=get_scenario("mixed"), seeds=(0, 1))  # doctest: +SKIP
>>> result = run_matrix(preset_variants(["pre-fix", "claimed-fix"]), spec, Path("out"))
... # doctest: +SKIP
>>> result.cells["claimed-fix"].classes["status_not_found"].tally.ci95  # doctest: +SKIP
(0.43, 0.48)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InfrastructureError, UsageError
from harness.evidence.across_runs import ClassTally, Evidence, WitnessWords, tally_runs
from harness.evidence.matrix import MatrixResult, MatrixRun, Variant
from harness.history.schema import ANOMALY_CLASSES
from harness.run.runner import RunOptions, run_chaos
from harness.run.scenario import Scenario
from harness.targets import reference
from harness.targets.contract import Contract

__all__ = ["MatrixSpec", "run_matrix"]

Progress = Callable[[str], None]


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
    time_scale: float | None = None  # any app; None: stated by contract or meta, else calibrated
    contract: Contract = field(default_factory=Contract)


def _options(variant: Variant, spec: MatrixSpec, seed: int, out: Path) -> RunOptions:
    is_ref = reference.is_reference(variant.app)
    return RunOptions(
        scenario=spec.scenario,
        app=variant.app,
        preset=variant.preset if is_ref else None,
        flags=dict(variant.flags) if is_ref else {},
        seed=seed,
        workers=spec.workers,
        router=spec.router,
        redis=spec.redis,
        duration_s=spec.duration_s,
        tenants=spec.tenants,
        retention_s=spec.retention_s,
        scan_deadline_s=spec.scan_deadline_s,
        time_scale=spec.time_scale,  # any app; one that states none is calibrated per run
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
    words: WitnessWords | None = None,
) -> MatrixResult:
    """Run every (variant, seed) into ``out/runs/`` and sum each variant's evidence.

    A run the infrastructure broke is recorded (``MatrixRun.error``) and left out
    of the sums, which then carry a problem line; bad usage stops the matrix.
    ``render`` (e.g. :func:`reports.render_run`) is called on each run directory;
    ``words`` (e.g. :func:`reports.first_witness_words`) tells each class's first
    witness in words.
    """
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise UsageError(f"variant names must be unique, got {names}")
    if not variants or not spec.seeds:
        raise UsageError("a matrix needs at least one variant and one seed")
    for variant in variants:  # every variant's target, before the first run starts
        options = _options(variant, spec, spec.seeds[0], out)
        reference.check_target(
            options.app, preset=options.preset, flags=options.flags, time_scale=options.time_scale
        )
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
                said = run.error or _headline(tally_runs([run_dir]))
                progress(
                    f"[{len(runs)}/{total}] {variant.name} seed {seed}: "
                    f"{run.verdict.upper()} in {run.seconds:.1f} s ({said}) -> {run_dir}"
                )
        if dirs:
            evidence = tally_runs(dirs, words=words)
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
