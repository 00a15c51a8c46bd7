"""Reading the TOML files users hand us (scenarios, contracts, thresholds, claims)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.errors import UsageError


def read_toml(path: Path, *, label: str = "") -> dict[str, Any]:
    """Parse ``path``; a missing file or bad TOML is one line naming it (``label``: the flag)."""
    name = f"{label} {path}".strip()
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{name}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{name}: not valid TOML ({exc})") from exc
