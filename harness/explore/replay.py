"""Replay a recorded or shrunk schedule K times and count how often each anomaly came back.

A replay file (written by ``scanproof explore``, or by hand; format in
:mod:`harness.explore.steps` and docs/explore.md) is a list of steps. Each
repeat starts from clean state (Redis flushed, every worker a fresh process,
fresh tenant names), runs the steps in order with their pins and faults,
records one history shard and judges it with the chaos-run checkers.

>>> from pathlib import Path
>>> from harness.explore.replay import ReplayOptions, replay
>>> options = ReplayOptions(path=Path("shrunk.toml"), repeat=10, preset="late-fix")
>>> report = replay(options)  # doctest: +SKIP
>>> report.reproduced["status_not_found"], report.repeat  # doctest: +SKIP
(0, 10)

Options are checked before anything starts:

>>> ReplayOptions(path=Path("shrunk.toml"), repeat=0)
Traceback (most recent call last):
    ...
harness.errors.UsageError: --repeat 0: must be 1..1000
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness.cluster import Cluster
from harness.errors import UsageError
from harness.explore.executor import Example, ServiceTiming, read_timing, reset_cluster
from harness.explore.lanes import Lane, await_all, start_lanes
from harness.explore.steps import (
    ReplayFile,
    Step,
    contract_digest,
    dumps_replay,
    load_replay,
    parse_replay,
)
from harness.history import schema as S
from harness.targets import reference
from harness.targets.contract import Contract

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
    app: str = reference.DEFAULT_APP
    preset: str | None = None  # reference service only; default reference.DEFAULT_PRESET
    flags: Mapping[str, Any] = field(default_factory=dict)  # reference service overrides
    redis: str = "auto"  # server when redis-server is on PATH: sound on fakeredis is slow
    # the reference runs on it (default 0.003); for another app it states the clock;
    # None: the contract's, the meta's, the file's calibrated one (same app), else calibrated
    time_scale: float | None = None
    workers: int | None = None  # default: the file's
    contract: Contract = field(default_factory=Contract)
    contract_file: str = ""  # where the contract was read from ("" built in)
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    out: Path | None = None
    lanes: int = 2  # clusters the repeats are shared between (harness.explore.lanes)

    def __post_init__(self) -> None:
        if not 1 <= self.repeat <= MAX_REPEAT:
            raise UsageError(f"--repeat {self.repeat}: must be 1..{MAX_REPEAT}")
        if not 1 <= self.lanes <= 4:
            raise UsageError(f"--lanes {self.lanes}: must be 1..4 (each lane is one cluster)")
        if self.time_scale is not None and not 0 < self.time_scale <= 1:
            raise UsageError(f"--time-scale {self.time_scale}: must be in (0, 1]")

    @property
    def is_reference(self) -> bool:
        return reference.is_reference(self.app)

    @property
    def target(self) -> str:
        return reference.effective_preset(self.app, self.preset) or self.app


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
    timing: ServiceTiming | None = None  # the time base the repeats ran on
    notes: tuple[str, ...] = ()  # where this replay differs from what the file was found on

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


def _service_env(options: ReplayOptions) -> dict[str, str]:
    """The workers' environment; UsageError for a bad preset or flag."""
    return reference.target_env(
        options.app,
        preset=options.preset,
        flags=options.flags,
        time_scale=(options.time_scale or DEFAULT_TIME_SCALE) if options.is_reference else None,
    )


def differences(file: ReplayFile, options: ReplayOptions, timing: ServiceTiming) -> tuple[str, ...]:
    """Where this replay runs on something else than the file was found on: the
    app, the preset, the contract or the time base (files without a record: nothing).

    >>> f = ReplayFile(name="x", steps=(Step(rule="discover"),), app="m:app", time_scale=0.01)
    >>> t = ServiceTiming(time_scale=0.02, retention_s=1.0, scan_deadline_s=1.0)
    >>> differences(f, ReplayOptions(path=Path("x"), app="m:app"), t)[0]
    'found at time scale 0.01 (); replayed at 0.02 (default)'
    """
    notes = []
    if file.app and file.app != options.app:
        notes.append(f"found on app {file.app}; replayed on {options.app}")
    preset = reference.effective_preset(options.app, options.preset) or ""
    if file.preset and preset and file.preset != preset:
        notes.append(f"found on preset {file.preset}; replayed on {preset}")
    digest = contract_digest(options.contract)
    if file.contract_digest and file.contract_digest != digest:
        was = file.contract or "the built-in contract"
        now = options.contract_file or "the built-in contract"
        notes.append(f"found with contract {was} ({file.contract_digest}); replayed with {now}")
    if file.time_scale and abs(timing.time_scale / file.time_scale - 1) > 0.01:
        notes.append(
            f"found at time scale {file.time_scale:.4g} ({file.time_base}); replayed at "
            f"{timing.time_scale:.4g} ({timing.source})"
        )
    return tuple(notes)


def _recorded(file: ReplayFile, options: ReplayOptions) -> dict[str, float] | None:
    """The file's calibrated time base, reused for the same app and contract (no new
    calibration: the repeats run on the clock the file was found on)."""
    same = file.app == options.app and file.contract_digest == contract_digest(options.contract)
    if same and file.time_scale and file.time_base.startswith("calibration"):
        return {"time_scale": file.time_scale, "scan_deadline_s": file.scan_deadline_s}
    return None


def _cluster(options: ReplayOptions, workers: int, env: dict[str, str]) -> Cluster:
    return Cluster.start(app=options.app, workers=workers, redis=options.redis, env=env)


def _repeats(
    file: ReplayFile,
    options: ReplayOptions,
    lanes: list[Lane],
    timing: ServiceTiming,
    out: Path,
    stop: threading.Event,
    progress: Callable[[str], None] | None,
) -> list[dict[str, int]]:
    """Every repeat's counts, in repeat order; the lanes take the next repeat in turn."""
    todo = deque(range(options.repeat))
    counts: dict[int, dict[str, int]] = {}
    lock = threading.Lock()

    def work(lane: Lane) -> None:
        while True:
            with lock:
                if not todo or stop.is_set():
                    return
                k = todo.popleft()
            reset_cluster(lane.cluster, path=options.contract.meta_path)
            example = Example(
                lane.cluster,
                lane.loop(),
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
                got = example.close_and_judge()
            with lock:
                counts[k] = got
                done = len(counts)
            if progress is not None:
                shown = ", ".join(n for n in S.ANOMALY_CLASSES if got.get(n, 0) > 0)
                what = shown or "nothing"
                progress(f"replay: repeat {k + 1} of {options.repeat}: {what} ({done} done)")

    await_all([lane.pool.submit(work, lane) for lane in lanes], lanes, stop)
    return [counts[k] for k in range(options.repeat)]


def replay(
    options: ReplayOptions, *, progress: Callable[[str], None] | None = None
) -> ReplayReport:
    """Run the file ``options.repeat`` times, each from clean state, and judge each repeat."""
    file = load_replay(options.path)
    env = _service_env(options)  # before the output directory exists: bad input makes nothing
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
    stop = threading.Event()  # set on Ctrl-C: the lanes stop, and are not waited for
    with contextlib.ExitStack() as stack:
        count = min(options.lanes, options.repeat)
        lanes = start_lanes(stack, count, lambda: _cluster(options, workers, env), stop)
        timing = read_timing(
            lanes[0].cluster,
            options.contract,
            retention_s=options.retention_s,
            scan_deadline_s=options.scan_deadline_s,
            time_scale=None if options.is_reference else options.time_scale,
            recorded=_recorded(file, options),
            calibrate_dir=out / "calibration",
            progress=progress,
        )
        counts = _repeats(file, options, lanes, timing, out, stop, progress)
    reproduced = {n: sum(1 for c in counts if c.get(n, 0) > 0) for n in S.ANOMALY_CLASSES}
    return ReplayReport(
        file=file,
        target=options.target,
        repeat=options.repeat,
        reproduced=reproduced,
        counts=tuple(counts),
        seconds=time.perf_counter() - begin,
        out=out,
        timing=timing,
        notes=differences(file, options, timing),
    )
