"""Replay a recorded or shrunk schedule K times and count how often each anomaly came back.

A replay file (written by ``scanproof explore``, or by hand; format in
:mod:`harness._explore_steps` and docs/explore.md) is a list of steps. Each
repeat starts from clean state (Redis flushed, every worker a fresh process,
fresh tenant names), runs the steps in order with their pins and faults,
records one history shard and judges it with the chaos-run checkers.

>>> from harness.replay import ReplayOptions, replay  # doctest: +SKIP
>>> report = replay(ReplayOptions(path=Path("shrunk.toml"), repeat=10, preset="late-fix"))
>>> report.reproduced["status_not_found"], report.repeat  # doctest: +SKIP
(0, 10)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness import schema as S
from harness._explore_exec import Example, read_timing, reference_env, reset_cluster
from harness._explore_steps import ReplayFile, Step, dumps_replay, load_replay, parse_replay
from harness.cluster import Cluster
from harness.contract import Contract
from harness.errors import UsageError

__all__ = [
    "ReplayFile",
    "ReplayOptions",
    "ReplayReport",
    "Step",
    "dumps_replay",
    "load_replay",
    "parse_replay",
    "replay",
]

DEFAULT_TIME_SCALE: Final = 0.003  # as exploration: a scan takes ~0.5 s
MAX_REPEAT: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    """What to replay, against what, how often."""

    path: Path
    repeat: int = 10
    app: str = "reference_impl.app:app"
    preset: str | None = None  # reference service only; default claimed-fix
    flags: Mapping[str, Any] = field(default_factory=dict)  # reference service overrides
    redis: str = "auto"  # server when redis-server is on PATH: sound on fakeredis is slow
    time_scale: float = DEFAULT_TIME_SCALE  # reference service only
    workers: int | None = None  # default: the file's
    contract: Contract = field(default_factory=Contract)
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    out: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.repeat <= MAX_REPEAT:
            raise UsageError(f"--repeat {self.repeat}: must be 1..{MAX_REPEAT}")
        if not 0 < self.time_scale <= 1:
            raise UsageError(f"--time-scale {self.time_scale}: must be in (0, 1]")

    @property
    def is_reference(self) -> bool:
        return self.app.startswith("reference_impl.")

    @property
    def target(self) -> str:
        return (self.preset or "claimed-fix") if self.is_reference else self.app


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Per class, in how many of ``repeat`` repeats it had an unexcused anomaly."""

    file: ReplayFile
    target: str
    repeat: int
    reproduced: dict[str, int]  # class -> repeats with count > 0
    counts: tuple[dict[str, int], ...]  # each repeat's counts (-1: checker crashed)
    seconds: float
    out: Path

    @property
    def any_reproduced(self) -> bool:
        return any(self.reproduced.values())

    def table(self) -> str:
        """A plain-text table: class, repeats reproduced, total anomalies."""
        lines = [f"{'class':<22} {'repeats':>9}  {'anomalies':>9}"]
        for name in S.ANOMALY_CLASSES:
            total = sum(max(0, c.get(name, 0)) for c in self.counts)
            mark = "  <- in the file's findings" if name in self.file.found else ""
            lines.append(
                f"{name:<22} {self.reproduced[name]:>4} / {self.repeat:<3} {total:>9}{mark}"
            )
        return "\n".join(lines)


def _cluster(options: ReplayOptions, workers: int) -> Cluster:
    if not options.is_reference and (options.preset is not None or options.flags):
        raise UsageError(
            f"--preset/--flag apply to the reference service only, not --app {options.app}"
        )
    env = reference_env(options.time_scale, options.flags) if options.is_reference else {}
    preset = (options.preset or "claimed-fix") if options.is_reference else None
    return Cluster.start(
        app=options.app, workers=workers, redis=options.redis, env=env, preset=preset
    )


def replay(options: ReplayOptions) -> ReplayReport:
    """Run the file ``options.repeat`` times, each from clean state, and judge each repeat."""
    file = load_replay(options.path)
    workers = options.workers or file.workers
    if workers < file.workers:
        raise UsageError(
            f"--workers {workers}: {options.path} pins requests to {file.workers} workers; "
            f"pass --workers {file.workers} or more"
        )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = options.target.replace(":", "-").replace("/", "-")
    out = options.out or Path("scanproof-runs") / f"replay-{stamp}-{label}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "replayed.toml").write_text(dumps_replay(file), encoding="utf-8")
    begin = time.perf_counter()
    counts: list[dict[str, int]] = []
    with _cluster(options, workers) as cluster, asyncio.Runner() as loop:
        timing = read_timing(
            cluster,
            options.contract,
            retention_s=options.retention_s,
            scan_deadline_s=options.scan_deadline_s,
        )
        for k in range(options.repeat):
            reset_cluster(cluster, path=options.contract.meta_path)
            example = Example(
                cluster,
                loop,
                out,
                timing=timing,
                tenants=file.tenants,
                label=f"repeat-{k}",
                contract=options.contract,
            )
            try:
                for step in file.steps:
                    example.run(step)
            finally:
                counts.append(example.close_and_judge())
    reproduced = {n: sum(1 for c in counts if c.get(n, 0) > 0) for n in S.ANOMALY_CLASSES}
    return ReplayReport(
        file=file,
        target=options.target,
        repeat=options.repeat,
        reproduced=reproduced,
        counts=tuple(counts),
        seconds=time.perf_counter() - begin,
        out=out,
    )
