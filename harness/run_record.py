"""``run.json``: the self-describing record next to every result.

It is written when a run starts (``status: "running"``) and rewritten when it
ends, so an interrupted or crashed run still says what it was.

>>> record = new_record(config={"seed": 1})
>>> record["status"]
'running'
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness._version import __version__
from harness.errors import UsageError

RUN_JSON = "run.json"
VERSIONED = ("fastapi", "starlette", "uvicorn", "httpx", "redis", "fakeredis", "pandas", "locust")


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_record(*, config: dict[str, Any]) -> dict[str, Any]:
    """A fresh run record: versions, platform, start time, config."""
    return {
        "scanproof_version": __version__,
        "status": "running",
        "started_at": now_iso(),
        "ended_at": None,
        "t0_ns": time.monotonic_ns(),
        "config": config,
        "versions": _versions(),
        "platform": {
            "python": sys.version.split()[0],
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "node": platform.node(),
        },
    }


def write_record(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write run.json atomically (a crash never leaves half a file)."""
    path = run_dir / RUN_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def read_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_JSON
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{run_dir}: no run.json; is this a scanproof run directory?") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data
