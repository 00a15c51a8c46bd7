"""How a run was set up, as every report shows it: the target, the timing and where
each value came from, the calibration measurements, the worker logs, and what the
contract did not understand.

Everything here reads the run directory as written (``run.json``, ``verdict.json``,
``workers/``) and tolerates any part missing: an older run simply shows less.

>>> target_items({"app": "jobs.main:app", "preset": None, "contract_file": "jobs.toml"})
[('app', 'jobs.main:app'), ('contract', 'jobs.toml')]
>>> target_items({"app": "reference_impl.service:app", "preset": "sound"})
[('app', 'reference_impl.service:app'), ('preset', 'sound')]
>>> rows = timing_rows({"check": {"sources": {"time_scale": {"value": 0.0125,
...     "source": "calibration"}, "deadline_slack": 1.5}}})
>>> [(r.name, r.value, r.source) for r in rows]
[('time_scale', '0.0125', 'calibration'), ('deadline_slack', '1.5', 'derived')]
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.targets.contract import Contract

WORKER_LOGS_DIR: Final = "workers"
# The header each worker process writes first (harness/cluster/_logs.py:incarnation_header;
# reports may not import the cluster, so the shape is repeated here).
_HEADER: Final = re.compile(rb"^=== scanproof: worker \d+, incarnation \d+, pid \d+", re.M)
_TRIMMED: Final = b"[scanproof: "
_LOG_NAME: Final = re.compile(r"^(\d+|zygote|router)\.log$")
_MAX_SCAN_BYTES: Final = 16 * 1024 * 1024
_DERIVED: Final = "derived"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def contract_label(config: Mapping[str, Any]) -> str:
    """The contract a run used: its file, else "built-in" or "custom (file not recorded)"."""
    for key in ("contract_file", "contract_path"):
        named = config.get(key)
        if isinstance(named, str) and named:
            return named
    recorded = config.get("contract")
    if not isinstance(recorded, Mapping) or not recorded:
        return "unknown"
    default = json.loads(json.dumps(dataclasses.asdict(Contract()), default=str))
    same = all(default.get(k) == v for k, v in recorded.items())
    return "built-in (the reference service's API)" if same else "custom (file not recorded)"


def target_items(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What was tested, as (label, value): the app, then the reference preset when there
    is one, else the contract; a contract file given alongside a preset is named too."""
    targets = _strings(config.get("targets"))
    if targets:  # a running deployment (--target): what was sent where, and how answers
        # named their worker
        return [
            ("target", ", ".join(targets)),
            ("contract", contract_label(config)),
            *load_items(config),
        ]
    app = config.get("app") or config.get("host") or "unknown"
    items = [("app", str(app))]
    if not config:  # no run.json: not even whether it was the reference
        return [*items, ("preset", "unknown")]
    preset = config.get("preset")
    if isinstance(preset, str) and preset:
        items.append(("preset", preset))
        named = config.get("contract_file")
        if isinstance(named, str) and named:
            items.append(("contract", named))
    else:
        items.append(("contract", contract_label(config)))
    return items


_ATTRIBUTION: Final = {
    "header": "from the contract's worker_header",
    "target URL": "per target URL (scanproof's router)",
    "unknown": "unknown (set worker_header in the contract)",
}


def load_items(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A --target run's worker attribution, load bound and connections, as (label, value).

    >>> load_items({"driver": {"max_rps": 50.0, "keep_alive": False},
    ...     "worker_attribution": "unknown"})  # doctest: +NORMALIZE_WHITESPACE
    [('worker attribution', 'unknown (set worker_header in the contract)'),
     ('max requests/s', '50'), ('connections', 'a new one per request')]
    """
    driver = _mapping(config.get("driver"))
    mode = config.get("worker_attribution")
    items = [("worker attribution", _ATTRIBUTION.get(str(mode), str(mode or "not recorded")))]
    rps = driver.get("max_rps")
    if isinstance(rps, int | float) and not isinstance(rps, bool):
        items.append(("max requests/s", f"{rps:g}"))
    if isinstance(driver.get("keep_alive"), bool):
        items.append(
            ("connections", "keep-alive" if driver["keep_alive"] else "a new one per request")
        )
    return items


@dataclass(frozen=True, slots=True)
class TimingRow:
    """One timing value: its name, the value as shown, and where it came from."""

    name: str
    value: str
    source: str


def _shown(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return "no data" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items())
    return str(value)


# Shown first, in this order; then any other stated value; derived margins last.
_ORDER: Final = ("time_scale", "scan_s", "poll_interval_s", "retention_s", "scan_deadline_s")


def _rank(row: TimingRow) -> tuple[bool, int, str]:
    known = _ORDER.index(row.name) if row.name in _ORDER else len(_ORDER)
    return (row.source == _DERIVED, known, row.name)


def timing_rows(record: Mapping[str, Any]) -> list[TimingRow]:
    """Every timing value the run recorded with its source (command line, environment,
    contract, app meta, calibration, default; ``derived`` for margins computed from
    them), then the judged values the checkers used."""
    check = _mapping(record.get("check"))
    rows: list[TimingRow] = []
    seen: set[str] = set()
    for block in (_mapping(check.get("sources")), _mapping(record.get("timing"))):
        for name, entry in block.items():
            if name in seen or name == "calibration":
                continue
            if isinstance(entry, Mapping) and "value" in entry:
                rows.append(TimingRow(name, _shown(entry["value"]), str(entry.get("source", "?"))))
            elif isinstance(entry, int | float | str) and not isinstance(entry, bool):
                rows.append(TimingRow(name, _shown(entry), _DERIVED))
            else:
                continue
            seen.add(name)
    scale = _mapping(record.get("config")).get("time_scale")
    if "time_scale" not in seen and isinstance(scale, int | float):
        rows.append(TimingRow("time_scale", _shown(scale), "not recorded"))
    rows.sort(key=_rank)
    for name in ("retention_s", "scan_deadline_s"):
        judged = check.get(name)
        if isinstance(judged, int | float) and not isinstance(judged, bool):
            rows.append(TimingRow(f"{name} (judged)", _shown(judged), "the above, margins applied"))
    return rows


def calibration_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The calibration measurements as (name, value), from wherever run.json holds a
    ``calibration`` object (top level, ``check`` or ``check.sources``); [] when none."""
    check = _mapping(record.get("check"))
    found: Mapping[str, Any] = {}
    for place in (record, check, _mapping(check.get("sources"))):
        candidate = place.get("calibration")
        if isinstance(candidate, Mapping) and candidate:
            found = candidate
            break
    rows: list[tuple[str, str]] = []
    for name, value in found.items():
        if isinstance(value, Mapping):
            rows += [(f"{name}.{k}", _shown(v)) for k, v in value.items()]
        elif isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
            rows += [(f"{name}[{i}]", _shown(v)) for i, v in enumerate(value)]  # one per scan
        else:
            rows.append((str(name), _shown(value)))
    return rows


@dataclass(frozen=True, slots=True)
class WorkerLog:
    """One kept log under ``workers/``: relative path, size, incarnations, tracebacks."""

    path: str  # relative to the run directory, e.g. "workers/2.log"
    size_bytes: int
    incarnations: int
    tracebacks: int
    trimmed: bool  # its older output was dropped to bound its size

    def describe(self) -> str:
        """``2 incarnations, 3.1 KiB, 1 traceback`` (what a reader needs to pick one)."""
        bits = []
        if self.incarnations:
            bits.append(f"{self.incarnations} incarnation{'s' if self.incarnations > 1 else ''}")
        bits.append(_size(self.size_bytes))
        if self.tracebacks:
            bits.append(f"{self.tracebacks} traceback{'s' if self.tracebacks > 1 else ''}")
        if self.trimmed:
            bits.append("older output dropped")
        return ", ".join(bits)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def _log_order(path: Path) -> tuple[int, int, str]:
    stem = path.stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def worker_logs(run_dir: Path) -> list[WorkerLog]:
    """The logs a run kept in ``<run_dir>/workers/``: workers in index order, then the
    zygote's and the router's; [] when the run kept none."""
    folder = run_dir / WORKER_LOGS_DIR
    try:
        paths = sorted((p for p in folder.iterdir() if _LOG_NAME.match(p.name)), key=_log_order)
    except OSError:
        return []
    logs = []
    for path in paths:
        try:
            with path.open("rb") as fh:
                data = fh.read(_MAX_SCAN_BYTES)
            size = path.stat().st_size
        except OSError:
            continue
        logs.append(
            WorkerLog(
                path=f"{WORKER_LOGS_DIR}/{path.name}",
                size_bytes=size,
                incarnations=len(_HEADER.findall(data)),
                tracebacks=data.count(b"Traceback (most recent call last)"),
                trimmed=data.startswith(_TRIMMED),
            )
        )
    return logs


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str) and v]
    return []


def _words_line(words: object) -> list[str]:
    if isinstance(words, Mapping) and words:
        listed = ", ".join(f'"{w}" ({n})' for w, n in words.items())
    elif isinstance(words, list | tuple) and words:
        listed = ", ".join(f'"{w}"' for w in words)
    else:
        return []
    return [f"status words the contract does not list: {listed}; add them under [words]"]


def understanding_warnings(verdict: Mapping[str, Any], reasons: tuple[str, ...]) -> list[str]:
    """What the contract did not understand, as the verdict recorded it (its
    ``understanding`` object's warnings, reasons and unknown words, or top-level
    ``warnings`` / ``unknown_words``); lines already among ``reasons`` are left out."""
    said: list[str] = []
    for place in (verdict, _mapping(verdict.get("understanding"))):
        said += _strings(place.get("warnings"))
        if place is not verdict:
            said += _strings(place.get("reasons"))
        if not any("words the contract does not list" in s for s in said):
            said += _words_line(place.get("unknown_words"))
    out: list[str] = []
    for line in said:
        if line not in reasons and line not in out:
            out.append(line)
    return out
