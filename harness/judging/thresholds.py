"""Gate thresholds: per anomaly class a maximum count, rate, or 95%-interval upper bound.

Read from ``[tool.scanproof.gate]`` of ``pyproject.toml`` or a ``--thresholds`` file (a
top-level table of the same shape). A bare whole number is a maximum count; a table
names any of ``count``, ``rate`` and ``ci95_upper``, and every limit it names must
hold. A class that is not listed allows 0 unexcused anomalies.

>>> table = {"status_not_found": {"rate": 0.01}, "zero_progress": 3}
>>> table["results_404"] = {"ci95_upper": 0.05}
>>> limits = parse_thresholds(table, source="pyproject.toml")
>>> limits["status_not_found"].describe(), limits["zero_progress"].describe()
('rate <= 1%', 'count <= 3')
>>> limits["status_not_found"].exceeded(780, 1000, upper=0.81)
'rate 78% (780 of 1000) > 1% allowed'
>>> limits["zero_progress"].exceeded(780, 1000, upper=0.81)
'780 > 3 allowed'

``run.json`` and ``verdict.json`` store a limit as :meth:`Limit.to_json` (a whole
number when it is a count alone), and :func:`as_limit` reads every form back:

>>> as_limit({"rate": 0.01}) == limits["status_not_found"], as_limit(3).to_json()
(True, 3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._toml import read_toml
from harness.errors import UsageError
from harness.history.schema import ANOMALY_CLASSES

_KEYS = ("count", "rate", "ci95_upper")
COVERAGE_KEY = "coverage"  # [tool.scanproof.gate.coverage]: minimum coverage, not a class


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


@dataclass(frozen=True, slots=True)
class Limit:
    """The most a class may show and still pass; ``None`` = no limit of that kind."""

    count: int | None = 0  # unexcused anomalies
    rate: float | None = None  # unexcused anomalies / opportunities
    ci95_upper: float | None = None  # upper end of the 95% Wilson interval of the rate

    def exceeded(self, count: int, opportunities: int, *, upper: float) -> str:
        """Why ``count`` of ``opportunities`` (interval upper end ``upper``) breaks this
        limit, or ``""`` when it holds. No opportunity breaks no rate limit."""
        if self.count is not None and count > self.count:
            return f"{count} > {self.count} allowed"
        if opportunities <= 0:
            return ""
        rate = count / opportunities
        seen = f"{_pct(rate)} ({count} of {opportunities})"
        if self.rate is not None and rate > self.rate:
            return f"rate {seen} > {_pct(self.rate)} allowed"
        if self.ci95_upper is not None and upper > self.ci95_upper:
            return (
                f"95% interval upper end {_pct(upper)} > {_pct(self.ci95_upper)} allowed "
                f"(rate {seen})"
            )
        return ""

    def describe(self) -> str:
        """The limit in words: ``count <= 0``, ``rate <= 1%``, ``95% upper <= 5%``."""
        parts = [f"count <= {self.count}"] if self.count is not None else []
        parts += [f"rate <= {_pct(self.rate)}"] if self.rate is not None else []
        if self.ci95_upper is not None:
            parts.append(f"95% upper <= {_pct(self.ci95_upper)}")
        return ", ".join(parts) or "no limit"

    def to_json(self) -> int | dict[str, float | int]:
        if self.rate is None and self.ci95_upper is None and self.count is not None:
            return self.count
        return {k: v for k in _KEYS if (v := getattr(self, k)) is not None}


def _limit(name: str, value: Any, source: str) -> Limit:
    where = f"{source}: threshold {name}"
    if isinstance(value, bool):
        raise UsageError(f"{where} = {value!r} must be a whole number >= 0 or a table")
    if isinstance(value, int):
        if value < 0:
            raise UsageError(f"{where} = {value!r} must be a whole number >= 0")
        return Limit(count=value)
    if not isinstance(value, Mapping):
        raise UsageError(
            f"{where} = {value!r} must be a whole number (a count) or a table such as "
            "{ rate = 0.01 } or { ci95_upper = 0.05 }"
        )
    unknown = [k for k in value if k not in _KEYS]
    if unknown or not value:
        raise UsageError(
            f"{where} has {'key ' + repr(unknown[0]) if unknown else 'no limit'}; "
            f"use count, rate or ci95_upper"
        )
    count = value.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise UsageError(f"{where}.count = {count!r} must be a whole number >= 0")
    fractions: dict[str, float | None] = {}
    for key in ("rate", "ci95_upper"):
        raw = value.get(key)
        ok = isinstance(raw, int | float) and not isinstance(raw, bool)
        if raw is not None and (not ok or not math.isfinite(raw) or not 0 <= raw <= 1):
            raise UsageError(f"{where}.{key} = {raw!r} must be a fraction from 0 to 1 (0.01 is 1%)")
        fractions[key] = None if raw is None else float(raw)
    return Limit(count=count, rate=fractions["rate"], ci95_upper=fractions["ci95_upper"])


def parse_thresholds(table: Mapping[str, Any], *, source: str) -> dict[str, Limit]:
    """Per-class limits from a TOML table; a bad class name or value is a UsageError naming
    it. A ``coverage`` sub-table (minimum coverage) is not a class and is skipped here."""
    limits: dict[str, Limit] = {}
    for name, value in table.items():
        if name == COVERAGE_KEY:
            continue
        if name not in ANOMALY_CLASSES:
            raise UsageError(
                f"{source}: unknown anomaly class {name!r} in gate thresholds; "
                f"valid: {', '.join(ANOMALY_CLASSES)}"
            )
        limits[name] = _limit(name, value, source)
    return limits


def as_limit(value: Any) -> Limit:
    """Any stored form (a whole number, a :class:`Limit`, its JSON table) as a Limit;
    a form that cannot be read is the strictest limit (count 0)."""
    if isinstance(value, Limit):
        return value
    try:
        return _limit("", value, "")
    except UsageError:
        return Limit()


def gate_table(path: Path | None, *, pyproject: Path = Path("pyproject.toml")) -> dict[str, Any]:
    """The raw gate table: ``path`` (a ``--thresholds`` file, or a pyproject.toml), else
    ``[tool.scanproof.gate]`` of ``pyproject`` when it exists, else ``{}``."""
    source = path or pyproject
    if path is None and not source.exists():
        return {}
    data = read_toml(source, label="--thresholds" if path else "")
    scanproof = _scanproof_table(data)
    table: Any = scanproof.get("gate", {}) if scanproof is not None else data if path else {}
    if not isinstance(table, dict):
        raise UsageError(f"{source}: [tool.scanproof.gate] must be a table of class = limit")
    return table


def load_thresholds(
    path: Path | None, *, pyproject: Path = Path("pyproject.toml")
) -> dict[str, Limit] | None:
    """The limits ``gate`` and ``check`` judge by: a ``--thresholds`` file, else
    ``[tool.scanproof.gate]`` of ./pyproject.toml; ``None`` when neither is there (a
    run then keeps the limits it recorded, and a new run allows 0 of every class)."""
    if path is None and not _has_gate(pyproject):
        return None
    return parse_thresholds(gate_table(path, pyproject=pyproject), source=str(path or pyproject))


def _scanproof_table(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tool = data.get("tool")
    scanproof = tool.get("scanproof") if isinstance(tool, Mapping) else None
    return scanproof if isinstance(scanproof, Mapping) else None


def _has_gate(pyproject: Path) -> bool:
    if not pyproject.exists():
        return False
    scanproof = _scanproof_table(read_toml(pyproject, label=""))
    return scanproof is not None and "gate" in scanproof


def load_coverage_minimums(
    path: Path | None, *, pyproject: Path = Path("pyproject.toml")
) -> dict[str, Any] | None:
    """``[tool.scanproof.gate.coverage]`` (or the ``coverage`` table of a ``--thresholds``
    file): the least ops a run must send per scan state and fault, checked here so a bad
    key is refused before anything runs; ``None`` when there is none."""
    if path is None and not _has_gate(pyproject):
        return None
    table = gate_table(path, pyproject=pyproject).get(COVERAGE_KEY)
    if table is None:
        return None
    source = str(path or pyproject)
    if not isinstance(table, dict):
        raise UsageError(f"{source}: [tool.scanproof.gate.coverage] must be a table of state = ops")
    from harness.judging.coverage import Coverage, coverage_shortfalls

    try:
        coverage_shortfalls(Coverage(), table)  # validates every key and number
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc
    return table
