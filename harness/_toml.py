"""Reading the TOML files users hand us (scenarios, contracts, thresholds, claims)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Final

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


_PLAIN_TYPES: Final[dict[str, type]] = {"float": float, "int": int, "bool": bool, "str": str}


def field_types(cls: type, *, skip: tuple[str, ...] = ()) -> dict[str, type]:
    """The plain type (float, int, bool, str) of each field of dataclass ``cls``."""
    # annotations are strings here (from __future__ import annotations)
    return {
        f.name: _PLAIN_TYPES[str(f.type)] for f in dataclasses.fields(cls) if f.name not in skip
    }


def typed_value(source: str, name: str, value: Any, want: type) -> Any:
    """``value`` as a ``want`` (an int is a float, a bool is never a number), else one
    UsageError naming ``source``, the field and the value."""
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (want is not bool and isinstance(value, bool)) or not isinstance(value, want):
        raise UsageError(f"{source}: field {name!r} must be {want.__name__}, got {value!r}")
    return value
