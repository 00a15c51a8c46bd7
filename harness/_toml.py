"""Reading the files and numbers users hand us (scenarios, contracts, thresholds, claims,
replay files), each mistake one line naming the file or option, the value and the fix.

>>> positive_number("--duration", float("nan"))
Traceback (most recent call last):
  ...
harness.errors.UsageError: --duration nan: must be a finite number of seconds > 0
>>> typed_value("s.toml", "poll_interval", float("inf"), float)
Traceback (most recent call last):
  ...
harness.errors.UsageError: s.toml: field 'poll_interval' = inf: must be a finite number
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any, Final

from harness.errors import UsageError


def read_text(path: Path, *, label: str = "") -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or non-UTF-8 file is one line
    naming it (``label``: the flag it came from)."""
    name = f"{label} {path}".strip()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from exc


def read_toml(path: Path, *, label: str = "") -> dict[str, Any]:
    """Parse ``path``; a missing file, non-UTF-8 text or bad TOML is one line naming it."""
    text = read_text(path, label=label)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{label} {path}".strip() + f": not valid TOML ({exc})") from exc


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def positive_number(label: str, value: object, *, unit: str = "seconds") -> float:
    """``value`` as a float when it is a finite number > 0, else one UsageError naming
    ``label`` (an option, or a file and field) and the value."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise UsageError(f"{label} {_shown(value)}: must be a finite number of {unit} > 0")
    return float(value)


_PLAIN_TYPES: Final[dict[str, type]] = {"float": float, "int": int, "bool": bool, "str": str}


def field_types(cls: type, *, skip: tuple[str, ...] = ()) -> dict[str, type]:
    """The plain type (float, int, bool, str) of each field of dataclass ``cls``."""
    # annotations are strings here (from __future__ import annotations)
    return {
        f.name: _PLAIN_TYPES[str(f.type)] for f in dataclasses.fields(cls) if f.name not in skip
    }


def typed_value(source: str, name: str, value: Any, want: type) -> Any:
    """``value`` as a ``want`` (an int is a float, a bool is never a number, a float is
    finite: TOML's ``nan`` and ``inf`` are refused), else one UsageError naming
    ``source``, the field and the value."""
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (want is not bool and isinstance(value, bool)) or not isinstance(value, want):
        raise UsageError(f"{source}: field {name!r} must be {want.__name__}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{source}: field {name!r} = {value!r}: must be a finite number")
    return value
