"""Options shared by the verbs that start a cluster or judge a run.

Every option can also come from the environment: ``SCANPROOF_<OPTION>`` with
dashes as underscores (``SCANPROOF_SEED=3``, ``SCANPROOF_REDIS=server``); the
command line wins.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UsageError
from harness.targets import reference

if TYPE_CHECKING:
    from harness.cluster import Cluster


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get("SCANPROOF_" + name.upper().replace("-", "_"), default)


# argparse ``type`` functions: a bad value is one line naming the option and the fix
# (scanproof's parser prints the message alone; see harness.cli._main).


def whole_number(flag: str, *, minimum: int | None = 1) -> Callable[[str], int]:
    """``--workers abc`` -> ``--workers abc: must be a whole number >= 1``; with
    ``minimum=None`` any whole number (the verb checks the range)."""
    want = "a whole number" + ("" if minimum is None else f" >= {minimum}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text}: must be {want}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} {text}: must be {want}")
        return value

    return parse


def number(flag: str, *, unit: str | None = "seconds") -> Callable[[str], float]:
    """A finite number, and > 0 unless ``unit`` is None (then the verb checks the range):
    ``--duration nan`` -> ``--duration nan: must be a finite number of seconds > 0``."""
    want = "a finite number" if unit is None else f"a finite number of {unit} > 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (unit is not None and value <= 0):
            raise argparse.ArgumentTypeError(f"{flag} {text}: must be {want}")
        return value

    return parse


def significance(flag: str) -> Callable[[str], float]:
    """A significance level strictly between 0 and 1: ``--alpha 2`` is refused in one line."""

    finite = number(flag, unit=None)

    def parse(text: str) -> float:
        value = finite(text)  # nan, inf, not a number: refused there
        if not 0 < value < 1:
            raise argparse.ArgumentTypeError(f"{flag} {text}: must be a number between 0 and 1")
        return value

    return parse


def check_redis_spec(spec: str) -> None:
    """A bad ``--redis`` (an unknown backend, a URL with a bad port or DB index): exit 2."""
    from harness.cluster.redis import resolve_spec

    resolve_spec(spec)


def add_target_options(
    parser: argparse.ArgumentParser, *, redis_default: str = "embedded"
) -> argparse._ArgumentGroup:
    """--app, --preset, --flag and --redis: what to run and on which Redis."""
    g = parser.add_argument_group("target")
    g.add_argument(
        "--app",
        default=_env("app", reference.DEFAULT_APP),
        metavar="MODULE:ATTR",
        help="the ASGI app to run as workers (default: the reference scan service)",
    )
    g.add_argument(
        "--preset",
        default=_env("preset", None),
        help=f"reference service preset: {', '.join(reference.PRESET_NAMES)} "
        f"(default {reference.DEFAULT_PRESET})",
    )
    g.add_argument(
        "--flag",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one reference service flag (JSON value; repeatable)",
    )
    g.add_argument(
        "--redis",
        default=_env("redis", redis_default),
        metavar="auto|embedded|server|URL",
        help=f"which Redis the workers share (default: {redis_default})",
    )
    return g


def add_cluster_options(
    parser: argparse.ArgumentParser, *, redis_default: str = "embedded", start_method: bool = False
) -> None:
    """The target options plus --workers, --router and the fault opt-ins.

    ``start_method`` adds ``--start-method fork|spawn`` (``up``: a long-lived cluster of
    an app that may not be fork-safe).
    """
    g = add_target_options(parser, redis_default=redis_default)
    g.add_argument(
        "--workers",
        type=whole_number("--workers"),
        # a string default is converted only when this verb runs: a bad SCANPROOF_WORKERS
        # breaks this verb with a clear message, not every other verb
        default=_env("workers", None),
        help="worker processes (default 4)",
    )
    g.add_argument(
        "--router",
        default=_env("router", "round-robin"),
        help="routing policy: round-robin (default), random, sticky",
    )
    g.add_argument(
        "--cmd",
        default=_env("cmd", None),
        metavar="COMMAND",
        help="run each worker as this command instead of --app (any language; placeholders "
        "{port}, {worker}, {redis_url}; environment PORT, WORKER_ID, REDIS_URL), e.g. "
        '"gunicorn mod:app -k uvicorn.workers.UvicornWorker -b 127.0.0.1:{port}"',
    )
    g.add_argument(
        "--ready-path",
        default=_env("ready_path", None),
        metavar="PATH",
        help="--cmd: a worker is ready when GET PATH answers (default: when its port "
        "accepts connections)",
    )
    g.add_argument(
        "--job-workers",
        default=_env("job_workers", None),
        metavar="COMMAND",
        help="a job-queue service's job workers (Celery, RQ...) run this command beside the "
        "web workers (environment REDIS_URL, JOB_WORKER_ID, SCANPROOF_RUN_ID in runs; logs "
        'job-<i>.log), e.g. "celery -A tasks worker --concurrency 1"',
    )
    g.add_argument(
        "--job-worker-count",
        type=whole_number("--job-worker-count"),
        default=_env("job_worker_count", "1"),
        metavar="N",
        help="--job-workers: how many (default 1)",
    )
    g.add_argument(
        "--job-ready-log",
        default=_env("job_ready_log", None),
        metavar="REGEX",
        help="--job-workers: a job worker is ready when its log matches REGEX, e.g. ready "
        "(default: when it has stayed up for half a second)",
    )
    if start_method:
        g.add_argument(
            "--start-method",
            choices=("fork", "spawn"),
            default=_env("start_method", "fork"),
            help="fork workers from a preloaded parent (default) or spawn each fresh "
            "(for apps that are not fork-safe)",
        )
    g.add_argument(
        "--allow-destructive",
        action="store_true",
        help="allow flush/eviction/deletion on an external --redis URL",
    )
    g.add_argument(
        "--allow-remote-faults",
        action="store_true",
        help="allow fault injection on a non-loopback external Redis",
    )


def parse_flags(items: list[str]) -> dict[str, Any]:
    """``["retry_policy=\\"bounded\\"", "fix_x=true"]`` -> a dict; bare words are strings."""
    flags: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--flag {item!r}: expected NAME=VALUE, e.g. --flag fix_x=true")
        try:
            flags[name] = json.loads(raw)
        except json.JSONDecodeError:
            flags[name] = raw
    return flags


def check_target_args(args: argparse.Namespace) -> dict[str, Any]:
    """Check --app/--preset/--flag/--redis (and --time-scale where the verb has it) before
    anything starts; returns the parsed flag overrides. Bad values: UsageError (exit 2),
    one line."""
    flags = parse_flags(args.flag)
    reference.check_target(
        args.app, preset=args.preset, flags=flags, time_scale=getattr(args, "time_scale", None)
    )
    check_redis_spec(args.redis)
    return flags


def start_cluster(args: argparse.Namespace, flags: dict[str, Any], **extra: Any) -> Cluster:
    """The cluster of a verb's ``add_cluster_options``/``add_target_options`` arguments
    (``flags``: from :func:`check_target_args`); ``extra`` goes to ``Cluster.start``."""
    from harness.cluster import Cluster

    return Cluster.start(
        app=args.app,
        cmd=args.cmd,
        ready_path=args.ready_path,
        workers=4 if args.workers is None else args.workers,
        router=args.router,
        redis=args.redis,
        env=reference.target_env(args.app, preset=args.preset, flags=flags),
        allow_destructive=args.allow_destructive,
        allow_remote_faults=args.allow_remote_faults,
        job_workers=getattr(args, "job_workers", None),
        job_worker_count=getattr(args, "job_worker_count", 1),
        job_ready_log=getattr(args, "job_ready_log", None),
        **extra,
    )


def add_time_scale_option(group: argparse._ArgumentGroup) -> None:
    """``--time-scale``: real seconds per service second of the scenario catalogue, for any app."""
    group.add_argument(
        "--time-scale",
        type=number("--time-scale", unit=None),  # the reference service checks its range
        default=_env("time_scale", None),
        metavar="REAL_S_PER_SERVICE_S",
        help="real seconds per service second, for any app: scenarios are written for a "
        "~165 service-second scan, so 0.01 means a scan takes ~1.6 s (default: the "
        "contract's time_scale or scan_s, else the app's meta, else calibration measures "
        f"it; the reference service states {reference.DEFAULT_TIME_SCALE:g})",
    )


def add_calibration_options(group: argparse._ArgumentGroup, *, scans_flag: str = "") -> None:
    """``--calibrate-timeout`` (and ``scans_flag`` for the number of scans, when given)."""
    group.add_argument(
        "--calibrate-timeout",
        type=number("--calibrate-timeout"),
        default=_env("calibrate_timeout", None),
        metavar="SECONDS",
        help="calibration (when no time scale is stated): real seconds its fault-free scans "
        "may take in all before the run is unknown, exit 3 (default 300)",
    )
    if scans_flag:
        group.add_argument(
            scans_flag,
            dest="calibrate_scans",
            metavar="K",
            type=whole_number(scans_flag),
            default=_env("calibrate_scans", "3"),
            help="calibration scans, over two tenants with distinct filters (default 3)",
        )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The workload options of ``run`` and ``gate``."""
    add_cluster_options(parser)
    g = parser.add_argument_group("workload")
    g.add_argument(
        "--scenario",
        default=_env("scenario", "mixed"),
        help="a named scenario or a scenario .toml file (default: mixed)",
    )
    g.add_argument(
        "--seed",
        type=whole_number("--seed", minimum=0),
        default=_env("seed", "0"),
        help="seed of the plan",
    )
    g.add_argument(
        "--duration",
        type=number("--duration"),
        default=_env("duration", None),
        help="active phase, seconds",
    )
    g.add_argument(
        "--tenants", type=whole_number("--tenants"), default=_env("tenants", None), help="tenants"
    )
    g.add_argument(
        "--retention-s",
        type=number("--retention-s"),
        default=_env("retention_s", None),
        help="seconds a finished scan must stay readable (default: the contract's retention_s, "
        "else the app's meta; calibration cannot measure it)",
    )
    g.add_argument(
        "--scan-deadline-s",
        type=number("--scan-deadline-s"),
        default=_env("scan_deadline_s", None),
        help="seconds by which a scan must be complete or failed (default: the contract's "
        "scan_deadline_s, else the app's meta, else calibration: p95 scan time x 3)",
    )
    add_time_scale_option(g)
    add_calibration_options(g)
    g.add_argument(
        "--contract", type=Path, default=_env("contract", None), help="contract .toml file"
    )
    g.add_argument(
        "--out",
        type=Path,
        default=_env("out", None),
        help="run directory (default: scanproof-runs/<time>-<scenario>-<preset>-s<seed>)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    t = parser.add_argument_group("deployment")
    t.add_argument(
        "--target",
        action="append",
        default=[u for u in (_env("target", "") or "").split() if u],
        metavar="URL",
        help="test a running deployment at URL instead of starting workers (repeatable: "
        "scanproof's router rotates requests over them); process faults need hooks",
    )
    t.add_argument(
        "--max-rps",
        type=number("--max-rps", unit="requests per second"),
        default=_env("max_rps", None),
        help="bound on the requests per second scanproof sends (printed before the start; "
        "default with --target: 50)",
    )
    t.add_argument(
        "--keep-alive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reuse connections (default: off with one --target, whose own balancer "
        "balances connections, so a kept-alive one would pin requests to one worker; "
        "on otherwise)",
    )
    d = parser.add_argument_group("driver")
    d.add_argument(
        "--driver",
        choices=("scripted", "locust"),
        default=_env("driver", "scripted"),
        help="who sends the requests: the seeded scripted plan (default) or locust users",
    )
    d.add_argument(
        "--users",
        type=whole_number("--users"),
        default=_env("users", "10"),
        help="--driver locust: concurrent users, each one tenant (default 10)",
    )
    d.add_argument(
        "--spawn-rate",
        type=number("--spawn-rate", unit="users per second"),
        default=_env("spawn_rate", "10"),
        help="--driver locust: users started per second (default 10)",
    )
