"""``run.json``: the self-describing record next to every result.

It is written when a run starts (``status: "running"``) and rewritten when it
ends, so an interrupted or crashed run still says what it was. A run killed
with SIGKILL cannot rewrite it: the record names the runner's process and the
temporary directories it made, and :func:`recover_killed` (called by
``scanproof check``) marks a ``running`` record whose process is gone as
``killed`` and removes those directories. The record is a
frozen :class:`RunRecord`; a run changes it by making a new one
(``record.but(status="complete")``) and writing it again. Every file carries a
``format`` number; a reader refuses a newer format in one line rather than
guess at it. Fields added later (``check.expected_classes``, ``calibration``)
keep format 1: a reader ignores keys it does not know and defaults the ones a
file lacks, so old and new readers read each other's files.

Timing values carry their source (``check.sources``: each of ``time_scale``,
``retention_s``, ``scan_deadline_s`` and ``poll_interval_s`` as
``{"value": ..., "source": "command line" | "environment" | "contract" |
"app meta" | "calibration" | ...}``), and ``calibration`` holds the
measurements when the run calibrated.

``phases`` says where the run's wall time went: seconds per phase (``startup``,
``cluster_start``, ``calibration`` when it ran, ``active``, ``recovery``,
``teardown``, ``judging``, ``rendering``) and ``total``; see :class:`PhaseClock`.
It is written when the run ends and again after judging and rendering; a file
without it (older, or written by a runner that did not time itself) reads as ``{}``.

>>> record = new_record(config=RunConfig(app="mypkg.main:app", seed=1))
>>> record.status, record.format
('running', 1)
>>> RunRecord.from_json(record.to_json(), source="run.json") == record
True
>>> RunRecord.from_json({"format": 99}, source="run.json")
Traceback (most recent call last):
...
harness.errors.UsageError: run.json: format 99 is newer than this scanproof reads (up to 1); ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, get_args

from harness._version import __version__
from harness.errors import UsageError

RUN_JSON = "run.json"
RUN_FORMAT = 1
VERSIONED = ("fastapi", "starlette", "uvicorn", "httpx", "redis", "fakeredis", "pandas", "locust")
RunStatus = Literal["running", "complete", "interrupted", "crashed", "refused", "killed"]
# A run that ended before its schedule did: its history stops early.
INCOMPLETE_STATUSES: tuple[RunStatus, ...] = ("running", "interrupted", "crashed", "killed")
# Only directories whose name starts like this are ever removed by recover_killed.
TEMP_DIR_PREFIXES = ("scanproof-cluster-", "scanproof-redis-", "scanproof-router-")


def package_version(name: str) -> str:
    """The installed version of ``name``, or ``"not installed"``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def refuse_newer(doc: Mapping[str, Any], *, supported: int, source: str) -> int:
    """The ``format`` of a scanproof file (0 before formats were numbered); a newer
    one than ``supported`` is refused with one line naming the file and the fix."""
    found = doc.get("format", 0)
    if isinstance(found, bool) or not isinstance(found, int) or found < 0:
        raise UsageError(f"{source}: format {found!r} is not a format number")
    if found > supported:
        raise UsageError(
            f"{source}: format {found} is newer than this scanproof reads (up to "
            f"{supported}); upgrade scanproof to read it"
        )
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """What the run was asked to do (as given, after validation)."""

    app: str = ""  # MODULE:ATTR of the service, or "" when scanproof did not start it
    host: str = ""  # the URL driven, when not a cluster scanproof started
    command: str = ""  # --cmd: the command each worker runs ("" = the ASGI ``app``)
    targets: tuple[str, ...] = ()  # --target: the running deployment's URLs
    worker_attribution: str = ""  # how answers name their worker: header | target URL | unknown
    job_workers: Mapping[str, Any] = field(default_factory=dict)  # command, count, ready_log
    run_id: str = ""  # the run's key namespace (SCANPROOF_RUN_ID, {run} in key patterns)
    preset: str | None = None  # the reference service's preset, else None
    flag_overrides: Mapping[str, Any] = field(default_factory=dict)
    scenario: Mapping[str, Any] = field(default_factory=dict)  # the scenario's fields
    seed: int = 0
    workers: int | None = None
    router: str = ""
    redis: Mapping[str, Any] = field(default_factory=dict)  # spec, backend, url
    contract: Mapping[str, Any] = field(default_factory=dict)
    contract_file: str = ""  # the --contract file; "" = the built-in contract
    driver: Mapping[str, Any] = field(default_factory=dict)  # name and its settings
    time_scale: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSettings:
    """How the history is judged: the judging window (real seconds) and its sources."""

    retention_s: float
    scan_deadline_s: float
    final_heal_ns: int | None = None
    sources: Mapping[str, Any] = field(default_factory=dict)  # each value's origin
    # The anomaly classes the run's plan should exercise: one of them with no
    # opportunity makes the verdict unknown. Empty in run.json files older than it.
    expected_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One run's ``run.json``; see the module docstring."""

    format: int = RUN_FORMAT
    scanproof_version: str = __version__
    status: RunStatus = "running"
    started_at: str = ""
    ended_at: str | None = None
    t0_ns: int = 0  # monotonic clock: op times minus this are seconds into the run
    config: RunConfig = field(default_factory=RunConfig)
    versions: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, Any] = field(default_factory=dict)  # class -> count or limit
    retry_policies: Mapping[str, str] = field(default_factory=dict)
    flags: Mapping[str, Any] = field(default_factory=dict)  # as the service's meta states them
    meta: Mapping[str, Any] = field(default_factory=dict)
    check: CheckSettings | None = None  # None until the cluster is up
    infrastructure_errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # faults that did not land
    restarts: tuple[Mapping[str, Any], ...] = ()
    crash: str | None = None
    # What calibration measured (harness.run.calibrate: per-scan seconds, median, p95,
    # n, the derived time scale and deadline, or why it failed); None when the time
    # scale was stated (command line, contract, app meta). Older readers ignore it.
    calibration: Mapping[str, Any] | None = None
    runner: Mapping[str, Any] = field(default_factory=dict)  # pid, start ticks, host
    temp_dirs: tuple[str, ...] = ()  # the cluster's temporary directories
    # Seconds per phase of the run and "total" (PhaseClock.to_json); {} in files older
    # than it. Older readers ignore it.
    phases: Mapping[str, float] = field(default_factory=dict)

    def but(self, **changes: Any) -> RunRecord:
        """A copy with ``changes``: ``record.but(status="complete")``."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["format"] = RUN_FORMAT
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, source: str) -> RunRecord:
        """Read a ``run.json`` document; a field of the wrong type is refused naming it."""
        refuse_newer(doc, supported=RUN_FORMAT, source=source)
        top = _fields(cls, doc, source, skip={"config", "check", "format"})
        raw_config = doc.get("config") or {}
        if not isinstance(raw_config, Mapping):
            raise UsageError(f"{source}: config must be an object")
        config = RunConfig(**_fields(RunConfig, raw_config, f"{source} config", skip=set()))
        raw_check = doc.get("check")
        check = None
        if isinstance(raw_check, Mapping) and raw_check.get("retention_s"):
            check = CheckSettings(
                **_fields(CheckSettings, raw_check, f"{source} check", skip=set())
            )
        return cls(config=config, check=check, **top)


_TUPLES = {
    "infrastructure_errors",
    "warnings",
    "restarts",
    "expected_classes",
    "temp_dirs",
    "targets",
}


def _fields(cls: type, doc: Mapping[str, Any], source: str, *, skip: set[str]) -> dict[str, Any]:
    """The known fields of ``cls`` present in ``doc``, with light type checks (JSON numbers,
    lists for tuples); unknown keys are ignored so older readers keep working."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name not in doc or (doc[f.name] is None and f.name != "ended_at"):
            continue
        value = doc[f.name]
        if f.name in _TUPLES:
            if not isinstance(value, list | tuple):
                raise UsageError(f"{source}: {f.name} must be a list, not {value!r}")
            value = tuple(value)
        elif f.name == "status" and value not in get_args(RunStatus):
            raise UsageError(f"{source}: status {value!r} is not one of {get_args(RunStatus)}")
        elif f.name in ("runner", "calibration") and not isinstance(value, Mapping):
            raise UsageError(f"{source}: {f.name} must be an object, not {value!r}")
        elif f.name == "phases":
            value = _phases(value, source)
        out[f.name] = value
    return out


def _phases(value: Any, source: str) -> dict[str, float]:
    """``phases`` as read: an object of seconds (JSON numbers, never negative)."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{source}: phases must be an object of seconds, not {value!r}")
    out: dict[str, float] = {}
    for name, seconds in value.items():
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise UsageError(f"{source}: phases {name} must be seconds >= 0, not {seconds!r}")
        out[str(name)] = float(seconds)
    return out


# The phases of a run in the order they happen, with the words the report and the
# command line use for them; "total" is the whole wall time.
PHASES: tuple[tuple[str, str], ...] = (
    ("startup", "startup"),  # process start (imports, arguments) to the cluster's start
    ("cluster_start", "cluster start"),  # Redis, router, workers up; the app's meta read
    ("calibration", "calibration"),  # fault-free scans, only when the run calibrated
    ("active", "active"),  # the scenario's first op to the final heal
    ("recovery", "recovery"),  # the final heal to the driver's end
    ("teardown", "teardown"),  # the cluster stopped, run.json rewritten
    ("judging", "judging"),  # tables, checkers, verdict.json
    ("rendering", "rendering"),  # report.md, report.html, junit.xml, plots
)
TOTAL = "total"


class PhaseClock:
    """Where a run's wall time goes: seconds per phase on :func:`time.monotonic`.

    One phase is in progress at a time; :meth:`enter` ends it and begins the next.
    ``start`` is when the first phase (``startup``) began: the process's start when the
    command line knows it (:func:`process_started`), else now.

    >>> clock = PhaseClock(start=time.monotonic() - 1.0)
    >>> clock.enter("cluster_start")
    >>> doc = clock.to_json()
    >>> list(doc), doc["startup"] >= 1.0, doc["total"] >= doc["startup"] + doc["cluster_start"]
    (['startup', 'cluster_start', 'total'], True, True)
    """

    def __init__(self, start: float | None = None, *, phase: str = "startup") -> None:
        self.start = time.monotonic() if start is None else start
        self._phase = phase
        self._since = self.start
        self._seconds: dict[str, float] = {}

    @property
    def phase(self) -> str:
        """The phase in progress."""
        return self._phase

    def enter(self, phase: str, *, at: float | None = None) -> None:
        """End the phase in progress at ``at`` (a :func:`time.monotonic` time between the
        phase's start and now; default now) and begin ``phase`` there."""
        now = time.monotonic()
        end = now if at is None else min(max(at, self._since), now)
        self._seconds[self._phase] = self._seconds.get(self._phase, 0.0) + (end - self._since)
        self._phase, self._since = phase, end

    def to_json(self) -> dict[str, float]:
        """Seconds per phase so far, the one in progress counted up to now, then ``total``.
        Each phase is rounded down and the total up (to the millisecond), so the phases
        never sum to more than the total."""
        now = time.monotonic()
        seconds = dict(self._seconds)
        seconds[self._phase] = seconds.get(self._phase, 0.0) + (now - self._since)
        doc = {name: math.floor(max(0.0, s) * 1000) / 1000 for name, s in seconds.items()}
        doc[TOTAL] = math.ceil(max(0.0, now - self.start) * 1000) / 1000
        return doc


def process_started() -> float | None:
    """When this process started, on the :func:`time.monotonic` clock (from its start
    time in /proc, to the clock tick: 10 ms); None without /proc."""
    ticks = _start_ticks(os.getpid())
    clock = getattr(time, "CLOCK_BOOTTIME", None)  # /proc's start times count from boot
    if ticks is None or clock is None:
        return None
    try:
        age = time.clock_gettime(clock) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return time.monotonic() - max(0.0, age)


def phase_items(phases: Mapping[str, float]) -> list[tuple[str, float]]:
    """(label, seconds) of ``phases`` in the order they happen (phases this scanproof
    does not know, from a newer one, after them), ``total`` last.

    >>> phase_items({"total": 3.0, "active": 2.0, "startup": 0.5, "later": 0.1})
    [('startup', 0.5), ('active', 2.0), ('later', 0.1), ('total', 3.0)]
    """
    labels = dict(PHASES)
    known = [(labels[name], phases[name]) for name, _ in PHASES if name in phases]
    other = [(name, s) for name, s in phases.items() if name not in labels and name != TOTAL]
    total = [(TOTAL, phases[TOTAL])] if TOTAL in phases else []
    return [*known, *other, *total]


def format_phases(phases: Mapping[str, float]) -> str:
    """One line: the total, then seconds per phase; "" when nothing was timed.

    >>> format_phases({"startup": 1.23, "active": 15.0, "total": 17.1})
    'time: 17.1 s (startup 1.2 s, active 15.0 s)'
    """
    items = phase_items(phases)
    if not items:
        return ""
    parts = ", ".join(f"{label} {s:.1f} s" for label, s in items if label != TOTAL)
    if TOTAL not in phases:
        return f"time: {parts}"
    return f"time: {phases[TOTAL]:.1f} s ({parts})"


def _platform() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "node": platform.node(),
    }


def new_record(*, config: RunConfig) -> RunRecord:
    """A fresh run record: versions, platform, start time, config, and this process
    as the runner."""
    return RunRecord(
        started_at=now_iso(),
        t0_ns=time.monotonic_ns(),
        config=config,
        versions={name: package_version(name) for name in VERSIONED},
        platform=_platform(),
        runner=runner_identity(),
    )


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """Process ``pid``'s state letter and start time (clock ticks since boot) from
    /proc; None when unknown (no such process, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        fields = stat[stat.rindex(b")") + 2 :].split()
        return fields[0].decode(), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[1] if stat is not None else None


def runner_identity(pid: int | None = None) -> dict[str, Any]:
    """Who runs the run: pid, its start time (so a reused pid is not mistaken for
    it) and the host, as recorded in ``run.json``."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start_ticks": _start_ticks(pid), "host": platform.node()}


def runner_alive(record: RunRecord) -> bool | None:
    """Whether the process that ran ``record`` still runs: None when it cannot be told
    (no runner recorded, or it ran on another host)."""
    runner = record.runner
    pid = runner.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    if runner.get("host") != platform.node():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _proc_stat(pid)
    if stat is None:
        return True  # it answered the signal; no /proc to say more
    state, ticks = stat
    if state in ("Z", "X"):
        return False  # dead, not yet reaped by its parent
    recorded = runner.get("start_ticks")
    return not isinstance(recorded, int) or recorded == ticks  # else the pid was reused


def _stale_temp_dir(path: str) -> Path | None:
    candidate = Path(path)
    if not candidate.is_absolute() or not candidate.name.startswith(TEMP_DIR_PREFIXES):
        return None  # not one of ours: never removed
    if candidate.is_symlink() or not candidate.is_dir():
        return None
    return candidate


def recover_killed(run_dir: Path) -> RunRecord:
    """``run_dir``'s record; a ``running`` one whose runner is gone is rewritten as
    ``killed`` and the temporary directories it recorded (only scanproof's, by name)
    are removed. What a run killed with SIGKILL could not do itself."""
    record = read_record(run_dir)
    if record.status != "running" or runner_alive(record) is not False:
        return record
    removed = []
    for path in record.temp_dirs:
        stale = _stale_temp_dir(path)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(str(stale))
    note = f"the runner (pid {record.runner.get('pid')}) was gone: marked killed"
    if removed:
        note += f"; removed {', '.join(removed)}"
    killed = record.but(status="killed", warnings=(*record.warnings, note))
    with contextlib.suppress(OSError):  # a read-only copy of a run: judged as killed anyway
        write_record(run_dir, killed)
    return killed


def write_record(run_dir: Path, record: RunRecord) -> Path:
    """Write run.json atomically (a crash never leaves half a file)."""
    path = run_dir / RUN_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a scanproof file; a missing or malformed one is a UsageError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{path.parent}: no {path.name}; is this a scanproof run directory?"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def read_record(run_dir: Path) -> RunRecord:
    """``run_dir/run.json`` as a :class:`RunRecord`."""
    path = run_dir / RUN_JSON
    return RunRecord.from_json(read_json_object(path), source=str(path))
