"""Per-class evidence summed over one or more judged run directories.

Matrix cells, claims and baseline comparisons all start here: for each anomaly
class, the unexcused count and the opportunities summed over the runs (then
one Wilson interval on the sums), what was excused, whether any checker
crashed, and the first witness told in words.

>>> evidence = tally_runs([Path("runs/mixed-s0"), Path("runs/mixed-s1")])  # doctest: +SKIP
>>> c = evidence.classes["status_not_found"]  # doctest: +SKIP
>>> c.count, c.opportunities, c.tally.ci95  # doctest: +SKIP
(996, 2172, (0.437, 0.480))

Nothing is re-judged: the numbers are the ones each run's ``verdict.json`` holds.
The first witness is told in words by ``words`` when the caller passes it (the
command line passes :func:`reports.first_witness_words`); without it, by the
checker's reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.evidence.stats import Tally
from harness.history.record import read_record
from harness.history.schema import ANOMALY_CLASSES

# The judge's reasons that say a run tested nothing (harness.judging.checkers.untested_reasons).
UNTESTED_PREFIXES = ("no scan was accepted", "no op was recorded", "the app never answered")

# What one opportunity of each class is, for sentences such as "380 more owner polls".
OPPORTUNITY_NOUN: Mapping[str, str] = {
    "status_not_found": "owner polls of live scans",
    "results_404": "owner results fetches of live scans",
    "zero_progress": "owner polls saying scanning or complete",
    "progress_regression": "polls with a predecessor",
    "status_regression": "polls or fetches after a terminal answer",
    "wrong_scan": "owner answers carrying a scan id",
    "cross_tenant_leak": "requests by a non-owner",
    "stuck_scan": "scans with a deadline inside the run",
}

# run directory -> anomaly class -> its first witness in words (e.g. reports.first_witness_words)
WitnessWords = Callable[[Path], Mapping[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassTally:
    """One anomaly class summed over runs."""

    name: str
    count: int = 0  # unexcused anomalies
    opportunities: int = 0
    excused: int = 0
    error: str = ""  # a checker crashed in some run: the class has no verdict
    first_witness: str = ""  # the earliest run's first witness, in words
    witness_run: str = ""  # the run directory it came from

    @property
    def tally(self) -> Tally:
        return Tally(self.count, self.opportunities)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Every class summed over ``runs``; ``problems`` says why some of it may be partial."""

    classes: Mapping[str, ClassTally]
    runs: tuple[Path, ...] = ()
    problems: tuple[str, ...] = ()  # infrastructure failures, runs never judged or incomplete
    config: Mapping[str, Any] = field(default_factory=dict)  # the first run's run.json config
    untested: tuple[str, ...] = ()  # "<run dir>: no scan was accepted: ..." per such run

    @property
    def has_data(self) -> bool:
        """Whether any class had any opportunity: without one the runs tested nothing."""
        return any(c.opportunities > 0 for c in self.classes.values())


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{path.parent}: no {path.name}; pass a run directory that was judged "
            f"(scanproof check {path.parent})"
        ) from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a JSON object; pass a run directory scanproof wrote")
    return data


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _words(words: WitnessWords | None, run_dir: Path) -> Mapping[str, str]:
    if words is None:
        return {}
    try:
        return words(run_dir)
    except Exception:  # words are a nicety: a report problem never loses the numbers
        return {}


def tally_runs(run_dirs: Iterable[Path], *, words: WitnessWords | None = None) -> Evidence:
    """Sum ``verdict.json`` of each run directory; raises UsageError for a missing one.

    ``words`` tells each run's first witnesses in words (the checkers' reasons without it).
    """
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UsageError("no run directory given; pass at least one judged run directory")
    sums: dict[str, dict[str, Any]] = {
        n: {"count": 0, "n": 0, "excused": 0} for n in ANOMALY_CLASSES
    }
    errors: dict[str, str] = {}
    witness: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    untested: list[str] = []
    config: Mapping[str, Any] = {}
    for run_dir in dirs:
        verdict = _read(run_dir / "verdict.json")
        record = read_record(run_dir)
        if not config:
            config = dataclasses.asdict(record.config)
        for reason in verdict.get("reasons") or []:
            if str(reason).startswith("infrastructure:"):
                problems.append(f"{run_dir}: {reason}")
            elif str(reason).startswith(UNTESTED_PREFIXES):
                untested.append(f"{run_dir}: {reason}")
        if record.status != "complete":
            problems.append(f"{run_dir}: run {record.status}, history partial")
        anomalies = verdict.get("anomalies")
        anomalies = anomalies if isinstance(anomalies, dict) else {}
        said = _words(words, run_dir)
        for name in ANOMALY_CLASSES:
            raw = anomalies.get(name)
            if not isinstance(raw, dict):
                errors.setdefault(name, f"missing from {run_dir}/verdict.json")
                continue
            if raw.get("error"):
                errors.setdefault(name, f"checker crashed in {run_dir}: {raw['error']}")
            s = sums[name]
            s["count"] += _int(raw.get("count"))
            s["n"] += _int(raw.get("opportunities"))
            s["excused"] += _int(raw.get("excused"))
            if name not in witness and _int(raw.get("count")) > 0:
                first = (raw.get("witnesses") or [{}])[0]
                reason = str(first.get("reason", "")) if isinstance(first, dict) else ""
                witness[name] = (said.get(name) or reason, str(run_dir))
    classes = {
        name: ClassTally(
            name=name,
            count=sums[name]["count"],
            opportunities=sums[name]["n"],
            excused=sums[name]["excused"],
            error=errors.get(name, ""),
            first_witness=witness.get(name, ("", ""))[0],
            witness_run=witness.get(name, ("", ""))[1],
        )
        for name in ANOMALY_CLASSES
    }
    return Evidence(
        classes=classes,
        runs=tuple(dirs),
        problems=tuple(problems),
        config=config,
        untested=tuple(untested),
    )
