"""What the benchmark scripts share: the machine line each prints first, and loading an
older copy of a module to measure it side by side with the installed one.

>>> machine_line("pandas 3").startswith("machine: ")
True
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine_line(*extra: str) -> str:
    """Host, CPU model, cores, kernel, Python, ``extra`` (versions, memory), date and
    load average: the first line of every benchmark's output."""
    model = platform.processor() or platform.machine() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    parts = [
        platform.node(),
        model,
        f"{len(os.sched_getaffinity(0))} cores",
        f"Linux {platform.release()}",
        f"Python {platform.python_version()}",
        *extra,
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()),
    ]
    return "machine: " + ", ".join(parts)


def attribute_of(path: str, attribute: str) -> Any:
    """``attribute`` of the module in file ``path`` (an older copy of a harness module,
    e.g. ``git show REV:harness/judging/checkers.py > /tmp/before.py``)."""
    name = f"_baseline_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot import it")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return getattr(module, attribute)
