"""``scanproof run --driver locust``: locust in its own process, the nemesis in ours.

Importing locust monkey-patches the interpreter with gevent, so the harness never
imports it: the runner starts ``python -m locust`` headless against the router
with the locustfile ``scenarios/locust/scan_load.py``, tells it through the
environment where to record and which workload to follow, and awaits it while
the nemesis plays the fault schedule.

Locust dies with us, whatever ends us, like the cluster's processes
(``harness/cluster/_proc.py``): it runs in a process group of its own (a
Ctrl-C reaches scanproof only, which stops locust itself), the kernel SIGKILLs
it when the thread that started it exits (``PR_SET_PDEATHSIG``: also after a
SIGKILL of scanproof), and an interrupted run stops its whole group, SIGTERM
first so that locust writes its reports, SIGKILL after a grace period or at a
second interrupt.

While locust runs, its process writes what its users saw so far to
``RUN_DIR/locust-live.json`` every second (``SCANPROOF_LIVE_FILE``), and
:func:`run_locust` turns it into a progress line like the scripted driver's.

>>> cmd = locust_command("http://127.0.0.1:9", Path("r"), users=5, spawn_rate=5, run_s=12.3)
>>> cmd[cmd.index("--run-time") + 1]
'13s'
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import InfrastructureError
from harness.run.scenario import Scenario
from harness.targets.contract import Contract

LOCUSTFILE = Path(__file__).resolve().parents[2] / "scenarios" / "locust" / "scan_load.py"
LOCUST_LOG = "locust.log"
LIVE_FILE = "locust-live.json"  # written by the locust process (scenarios/locust/recording.py)
PROGRESS_EVERY_S = 1.0
# locust exits 1 when any request failed (a 5xx or a refused connection during a
# fault is expected in a chaos run); anything else means locust itself failed
_LOCUST_OK_CODES = (0, 1)
# locust stops its users and writes its reports in well under a second
_STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 15


def locust_command(
    router_url: str, run_dir: Path, *, users: int, spawn_rate: float, run_s: float
) -> list[str]:
    """The headless locust command line of a run (its reports land in ``run_dir``)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        router_url,
        "--users",
        str(users),
        "--spawn-rate",
        repr(spawn_rate),
        "--run-time",
        f"{max(1, math.ceil(run_s))}s",
        "--only-summary",
        "--csv",
        str(run_dir / "locust"),
        "--html",
        str(run_dir / "locust.html"),
        # the CSV is rewritten once a second and may miss the last second; the JSON
        # file is written at exit from the final statistics
        "--json-file",
        str(run_dir / "locust"),
    ]


def locust_env(
    run_dir: Path,
    *,
    seed: int,
    workload: Scenario,
    contract: Contract,
    given: Mapping[str, float | None] | None = None,
) -> dict[str, str]:
    """The environment the locustfile reads (see ``scenarios/locust/_workload.py``).

    ``given``: the user's own ``time_scale`` / ``retention_s`` / ``scan_deadline_s``,
    passed on so that the users' judging window is the run's (an app without a meta
    endpoint has no other source for them)."""
    fields = dataclasses.asdict(workload)
    fields.pop("faults")
    env = dict(os.environ)
    env.update(
        SCANPROOF_RUN_DIR=str(run_dir),
        SCANPROOF_SEED=str(seed),
        SCANPROOF_WORKLOAD=json.dumps(fields, sort_keys=True),
        SCANPROOF_CONTRACT_JSON=json.dumps(
            {k: v for k, v in dataclasses.asdict(contract).items() if v is not None}
        ),
        SCANPROOF_LOCUST_JUDGE="0",  # the runner judges the run itself
        SCANPROOF_LIVE_FILE=str(run_dir / LIVE_FILE),
    )
    for name, value in (given or {}).items():
        if value is not None:
            env[f"SCANPROOF_{name.upper()}"] = repr(float(value))
    return env


def progress_line(live: Mapping[str, Any] | None, *, elapsed_s: float, run_s: float) -> str:
    """The progress line of a locust run, from its live file (None: not written yet).

    >>> live = {"users": 5, "ops": 400, "errors": 2, "anomalies": {"wrong_scan": 100}}
    >>> progress_line(live, elapsed_s=12.34, run_s=45)
    '[ 12.3s/45s] locust: users 5  answers 400  errors 2  anomalies so far: wrong_scan 100 (25.0%)'
    >>> progress_line(None, elapsed_s=1, run_s=45)
    '[  1.0s/45s] locust: starting, no answers yet'
    """
    head = f"[{elapsed_s:5.1f}s/{run_s:.0f}s] locust:"
    if live is None:
        return f"{head} starting, no answers yet"
    ops = int(live.get("ops", 0))
    found = ", ".join(
        f"{name} {n} ({100 * int(n) / ops:.1f}%)" if ops else f"{name} {n}"
        for name, n in dict(live.get("anomalies", {})).items()
    )
    return (
        f"{head} users {live.get('users', '?')}  answers {ops}  errors {live.get('errors', 0)}"
        f"  anomalies so far: {found or 'none'}"
    )


def read_live(path: Path) -> dict[str, Any] | None:
    """The live file's counts; None while it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


async def _report(live_path: Path, progress: Callable[[str], None], run_s: float) -> None:
    """A progress line every :data:`PROGRESS_EVERY_S` until cancelled."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        line = progress_line(
            read_live(live_path), elapsed_s=time.monotonic() - started, run_s=run_s
        )
        progress(line)


async def run_locust(
    cmd: list[str],
    env: dict[str, str],
    run_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
    run_s: float = 0.0,
) -> None:
    """Run locust to its end; raises InfrastructureError when locust itself failed.

    ``progress``: called with a line of live counts every second (see
    :func:`progress_line`); ``run_s`` is locust's run time, for that line.
    Cancelled (Ctrl-C, SIGTERM, a failing fault schedule), it stops locust's
    process group before it returns: see :func:`_stop`.
    """
    log_path = run_dir / LOCUST_LOG
    report = run_dir / "locust.json"  # written by locust at exit (--json-file)
    report_before = _mtime_ns(report)
    with log_path.open("ab") as log:
        try:
            # asyncio forks here, in the thread that runs the event loop: the thread the
            # parent-death signal follows. It outlives locust, because it awaits locust's
            # end (and its stop when cancelled) before it can do anything else.
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                env=env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                process_group=0,
                preexec_fn=_dies_with_this_process(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise InfrastructureError(
                f"could not start locust ({exc}); command: {shlex.join(cmd)}"
            ) from exc
        live = env.get("SCANPROOF_LIVE_FILE")
        reporter = (
            asyncio.create_task(_report(Path(live), progress, run_s))
            if progress is not None and live
            else None
        )
        try:
            code = await proc.wait()
        finally:
            if reporter is not None:
                reporter.cancel()
            if proc.returncode is None:  # interrupted: locust goes first
                await _stop(proc)
    if code not in _LOCUST_OK_CODES:
        raise InfrastructureError(_failure(cmd, code, log_path, "locust itself failed"))
    if _mtime_ns(report) == report_before:
        # exit code 1 is also how locust fails before it ran (no locust module, a
        # locustfile that does not import): then it never wrote its final statistics
        raise InfrastructureError(
            _failure(cmd, code, log_path, f"locust never ran: it wrote no {report.name}")
        )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Stop locust's process group and reap locust, however often we are interrupted.

    SIGTERM first: locust stops its users and writes its reports. SIGKILL after
    :data:`_STOP_GRACE_S`, or at once when this wait is itself cancelled (a
    second Ctrl-C, the event loop closing), and then for anything locust left in
    its group. Locust is reaped before we return, so asyncio never reports a
    child exiting after its event loop closed.
    """
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _STOP_GRACE_S)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()  # a SIGKILLed process is gone within milliseconds


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signum)


def _dies_with_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel to SIGKILL the child when we are gone.

    The same guarantee as ``set_pdeathsig`` in ``harness/cluster/_proc.py`` (private
    to the cluster). ``prctl`` is looked up here, before the fork: the child runs
    only the call. The signal is sent when the *thread* that forks exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # we died between the fork and the prctl
            os._exit(1)

    return setup


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _failure(cmd: list[str], code: int, log_path: Path, why: str) -> str:
    """The message of a failed locust: what ended it, its command, its log's last lines."""
    if code < 0:
        try:
            ended = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            ended = f"was killed by signal {-code}"
    else:
        ended = f"exited with code {code}"
    try:
        lines = log_path.read_text(errors="replace").splitlines()[-_TAIL_LINES:]
    except OSError as exc:
        lines = [f"(cannot read it: {exc})"]
    return f"locust {ended} ({why}); command: {shlex.join(cmd)}; last lines of {log_path}:\n" + (
        "\n".join(lines) or "(empty log)"
    )
