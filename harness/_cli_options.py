"""Options shared by the verbs that start a cluster or judge a run.

Every option can also come from the environment: ``SCANPROOF_<OPTION>`` with
dashes as underscores (``SCANPROOF_SEED=3``, ``SCANPROOF_REDIS=server``); the
command line wins.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from harness._toml import read_toml
from harness.errors import UsageError
from harness.schema import ANOMALY_CLASSES


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get("SCANPROOF_" + name.upper().replace("-", "_"), default)


def add_target_options(
    parser: argparse.ArgumentParser, *, redis_default: str = "embedded"
) -> argparse._ArgumentGroup:
    """--app, --preset, --flag and --redis: what to run and on which Redis."""
    g = parser.add_argument_group("target")
    g.add_argument(
        "--app",
        default=_env("app", "reference_impl.app:app"),
        metavar="MODULE:ATTR",
        help="the ASGI app to run as workers (default: the reference scan service)",
    )
    g.add_argument(
        "--preset",
        default=_env("preset", None),
        help="reference service preset: pre-fix, claimed-fix, late-fix, sound "
        "(run, gate, explore and replay default to claimed-fix)",
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
        type=int,
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


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The workload options of ``run`` and ``gate``."""
    add_cluster_options(parser)
    g = parser.add_argument_group("workload")
    g.add_argument(
        "--scenario",
        default=_env("scenario", "mixed"),
        help="a named scenario or a scenario .toml file (default: mixed)",
    )
    g.add_argument("--seed", type=int, default=_env("seed", "0"), help="seed of the plan")
    g.add_argument(
        "--duration", type=float, default=_env("duration", None), help="active phase, seconds"
    )
    g.add_argument("--tenants", type=int, default=_env("tenants", None), help="tenants")
    g.add_argument(
        "--retention-s",
        type=float,
        default=_env("retention_s", None),
        help="seconds a finished scan must stay readable (default: from the app's meta)",
    )
    g.add_argument(
        "--scan-deadline-s",
        type=float,
        default=_env("scan_deadline_s", None),
        help="seconds by which a scan must be complete or failed (default: from meta)",
    )
    g.add_argument(
        "--time-scale",
        type=float,
        default=_env("time_scale", None),
        help="reference service time scale (default 0.01: a scan takes ~1.6 s)",
    )
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
    d = parser.add_argument_group("driver")
    d.add_argument(
        "--driver",
        choices=("scripted", "locust"),
        default=_env("driver", "scripted"),
        help="who sends the requests: the seeded scripted plan (default) or locust users",
    )
    d.add_argument(
        "--users",
        type=int,
        default=_env("users", "10"),
        help="--driver locust: concurrent users, each one tenant (default 10)",
    )
    d.add_argument(
        "--spawn-rate",
        type=float,
        default=_env("spawn_rate", "10"),
        help="--driver locust: users started per second (default 10)",
    )


def load_thresholds(path: Path | None) -> dict[str, int]:
    """Per-class limits from a file, or ``[tool.scanproof.gate]`` of ./pyproject.toml.

    >>> load_thresholds(None)  # doctest: +SKIP
    {}
    """
    source = path or Path("pyproject.toml")
    if path is None and not source.exists():
        return {}
    data = read_toml(source, label="--thresholds")
    table: Any = data.get("tool", {}).get("scanproof", {}).get("gate", data if path else {})
    if not isinstance(table, dict):
        raise UsageError(f"{source}: [tool.scanproof.gate] must be a table of class = limit")
    limits: dict[str, int] = {}
    for name, value in table.items():
        if name not in ANOMALY_CLASSES:
            raise UsageError(
                f"{source}: unknown anomaly class {name!r} in gate thresholds; "
                f"valid: {', '.join(ANOMALY_CLASSES)}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{source}: threshold {name} = {value!r} must be a whole number >= 0")
        limits[name] = value
    return limits
