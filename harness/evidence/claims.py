"""Claims: statements from a merge description, each bound to a checkable predicate.

A claims file (TOML) lists statements and the predicate that decides each one
over the evidence of one or more runs::

    title = "Merge Confirmation"
    scenario = "mixed"          # optional: what `scanproof claims` runs (default mixed)
    seeds = 2                   # optional: seeds 0..1 (or a list, seeds = [3, 7])
    duration = 8.0              # optional: real seconds of each run's active phase
    tolerance = 0.01            # optional: default for every claim

    [[claims]]
    id = "1"
    statement = "status is never not_found"
    predicate = "status_not_found == 0"
    anomaly_classes = ["status_not_found"]   # optional: classes whose witnesses to show

The predicate language is tiny and never ``eval``-ed: atoms ``<class> == 0``,
``<class> <= N`` (a bound on the unexcused count) and ``<class>.rate <= R``,
joined with ``and``. Each claim comes out:

- ``REFUTED``: the predicate is false (``count > N``; for a rate, the 95%
  interval lies wholly above ``R``);
- ``CONFIRMED``: it holds *and* the measurement is tight enough: for a count
  the Wilson upper bound of the rate is below the claim's ``tolerance``; for a
  rate the interval lies wholly below ``R``;
- ``INCONCLUSIVE``: neither yet; the evidence says how many more opportunities
  would decide it, or why the runs cannot (a crashed checker, a failed run).

>>> claim = parse_claim({"id": "1", "statement": "s", "predicate": "results_404 == 0"}, "f")
>>> from harness.evidence.across_runs import ClassTally, Evidence
>>> ev = Evidence(classes={"results_404": ClassTally(name="results_404", opportunities=50)})
>>> judge_claim(claim, ev).outcome
'INCONCLUSIVE'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness._toml import read_toml
from harness.errors import UsageError
from harness.evidence.across_runs import OPPORTUNITY_NOUN, ClassTally, Evidence
from harness.evidence.stats import (
    opportunities_for_upper_bound,
    opportunities_to_separate,
)
from harness.history.schema import ANOMALY_CLASSES

Outcome = Literal["CONFIRMED", "REFUTED", "INCONCLUSIVE"]
DEFAULT_TOLERANCE = 0.01
_ATOM = re.compile(
    r"^(?P<cls>[A-Za-z_][A-Za-z0-9_]*)(?P<rate>\.rate)?\s*(?P<op>==|<=)\s*(?P<num>\S+)$"
)


@dataclass(frozen=True, slots=True)
class Atom:
    """``count <= bound`` (``== 0`` is ``<= 0``), or ``rate <= bound`` when ``is_rate``."""

    anomaly_class: str
    is_rate: bool
    bound: float

    def __str__(self) -> str:
        if self.is_rate:
            return f"{self.anomaly_class}.rate <= {self.bound:g}"
        op = "==" if self.bound == 0 else "<="
        return f"{self.anomaly_class} {op} {int(self.bound)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    id: str
    statement: str
    predicate: tuple[Atom, ...]
    anomaly_classes: tuple[str, ...]
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def predicate_text(self) -> str:
        return " and ".join(str(a) for a in self.predicate)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimsFile:
    """A parsed claims file; ``None`` fields fall back to the command line or defaults."""

    path: Path
    title: str
    claims: tuple[Claim, ...]
    scenario: str | None = None
    seeds: tuple[int, ...] | None = None
    duration: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomResult:
    atom: Atom
    outcome: Outcome
    evidence: str  # one sentence: the numbers, and what would decide it


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimResult:
    claim: Claim
    outcome: Outcome
    atoms: tuple[AtomResult, ...]
    witness: str = ""  # REFUTED: the first witness of the first refuting class, in words
    witness_class: str = ""
    notes: tuple[str, ...] = ()  # why the runs may be partial

    @property
    def evidence(self) -> str:
        return " ".join(a.evidence for a in self.atoms)


def parse_predicate(text: str, *, where: str) -> tuple[Atom, ...]:
    """Parse ``a == 0 and b.rate <= 0.01``; errors name ``where`` and the bad token."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: predicate is empty; write e.g. 'status_not_found == 0'")
    atoms = []
    for part in re.split(r"\s+and\s+", text.strip()):
        m = _ATOM.match(part.strip())
        if m is None:
            raise UsageError(
                f"{where}: cannot read {part.strip()!r} in predicate {text!r}; atoms are "
                "'<class> == 0', '<class> <= N' or '<class>.rate <= R', joined with 'and'"
            )
        name, num = m["cls"], m["num"]
        if name not in ANOMALY_CLASSES:
            raise UsageError(
                f"{where}: unknown anomaly class {name!r} in predicate {text!r}; "
                f"valid: {', '.join(ANOMALY_CLASSES)}"
            )
        try:
            bound = float(num) if m["rate"] else int(num)
        except ValueError:
            want = "a rate such as 0.01" if m["rate"] else "a whole number"
            raise UsageError(f"{where}: {num!r} in predicate {text!r} must be {want}") from None
        if m["rate"] and not 0.0 <= bound < 1.0:
            raise UsageError(f"{where}: rate bound {num!r} must be in [0, 1) in {text!r}")
        if not m["rate"] and bound < 0:
            raise UsageError(f"{where}: count bound {num!r} must be >= 0 in {text!r}")
        if m["op"] == "==" and bound != 0:
            raise UsageError(
                f"{where}: {part.strip()!r}: '==' takes only 0; write '{name} <= {num}' for a bound"
            )
        atoms.append(Atom(name, bool(m["rate"]), float(bound)))
    return tuple(atoms)


def _tolerance(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise UsageError(f"{where}: tolerance {value!r} must be a rate between 0 and 1, e.g. 0.01")
    return float(value)


def parse_claim(
    raw: Mapping[str, Any], source: str, *, tolerance: float = DEFAULT_TOLERANCE
) -> Claim:
    """One ``[[claims]]`` table; ``source`` names the file in errors."""
    claim_id = str(raw.get("id", "")).strip()
    where = f"{source}: claim {claim_id!r}" if claim_id else f"{source}: a claim without an id"
    known = {"id", "statement", "predicate", "anomaly_classes", "tolerance"}
    for key in raw:
        if key not in known:
            raise UsageError(f"{where}: unknown field {key!r}; valid: {', '.join(sorted(known))}")
    if not claim_id:
        raise UsageError(f'{where}: add id = "..." (the claim\'s number or name)')
    statement = raw.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise UsageError(f'{where}: add statement = "..." (the promise, in words)')
    atoms = parse_predicate(raw.get("predicate", ""), where=where)
    named = raw.get("anomaly_classes", [])
    if not isinstance(named, list) or not all(isinstance(n, str) for n in named):
        raise UsageError(f"{where}: anomaly_classes must be a list of class names")
    for name in named:
        if name not in ANOMALY_CLASSES:
            raise UsageError(
                f"{where}: unknown anomaly class {name!r} in anomaly_classes; "
                f"valid: {', '.join(ANOMALY_CLASSES)}"
            )
    classes = tuple(dict.fromkeys([*(a.anomaly_class for a in atoms), *named]))
    tol = _tolerance(raw["tolerance"], where) if "tolerance" in raw else tolerance
    return Claim(
        id=claim_id,
        statement=statement.strip(),
        predicate=atoms,
        anomaly_classes=classes,
        tolerance=tol,
    )


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise UsageError(f"{source}: seeds = {value!r} must be a count >= 1 or a list of seeds")


def load_claims(path: Path) -> ClaimsFile:
    """Read and check a claims file; every error names the file and the claim."""
    data = read_toml(Path(path))
    source = str(path)
    known = {"title", "scenario", "seeds", "duration", "tolerance", "claims"}
    for key in data:
        if key not in known:
            raise UsageError(f"{source}: unknown field {key!r}; valid: {', '.join(sorted(known))}")
    tolerance = _tolerance(data["tolerance"], source) if "tolerance" in data else DEFAULT_TOLERANCE
    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise UsageError(f"{source}: no [[claims]] tables; add at least one claim")
    claims = tuple(
        parse_claim(c if isinstance(c, dict) else {}, source, tolerance=tolerance)
        for c in raw_claims
    )
    ids = [c.id for c in claims]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UsageError(f"{source}: claim id {dupes[0]!r} appears twice; ids must be unique")
    duration = data.get("duration")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise UsageError(f"{source}: duration = {duration!r} must be a finite number > 0 seconds")
    scenario = data.get("scenario")
    if scenario is not None and not isinstance(scenario, str):
        raise UsageError(f"{source}: scenario = {scenario!r} must be a name or a .toml path")
    return ClaimsFile(
        path=Path(path),
        title=str(data.get("title") or Path(path).stem),
        claims=claims,
        scenario=scenario,
        seeds=_seeds(data["seeds"], source) if "seeds" in data else None,
        duration=float(duration) if duration is not None else None,
    )


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%" if x == 0 or x >= 0.0001 else f"{x * 100:.2g}%"


def _measured(c: ClassTally) -> str:
    lo, hi = c.tally.ci95
    return (
        f"{c.name}: {c.count:,} of {c.opportunities:,} {OPPORTUNITY_NOUN[c.name]} "
        f"({_pct(c.tally.rate)}, 95% CI {_pct(lo)}-{_pct(hi)})"
    )


def _more(n: int, noun: str) -> str:
    return "far more than any run provides" if n >= 10**11 else f"about {n:,} more {noun}"


def judge_atom(atom: Atom, c: ClassTally, tolerance: float) -> AtomResult:
    """Decide one atom from one class's summed evidence."""
    noun = OPPORTUNITY_NOUN[c.name]
    if c.error:
        return AtomResult(atom=atom, outcome="INCONCLUSIVE", evidence=f"{c.name}: {c.error}.")
    if c.opportunities == 0:
        need = (
            opportunities_for_upper_bound(0, tolerance)
            if not atom.is_rate
            else opportunities_to_separate(0.0, atom.bound, 0)
            if atom.bound > 0
            else 10**12
        )
        return AtomResult(
            atom=atom,
            outcome="INCONCLUSIVE",
            evidence=f"{c.name}: no {noun} at all, so nothing was measured; "
            f"{_more(need, noun)} would decide it.",
        )
    lo, hi = c.tally.ci95
    if atom.is_rate:
        if lo > atom.bound:
            return AtomResult(
                atom=atom,
                outcome="REFUTED",
                evidence=f"{_measured(c)}: the whole interval is above {_pct(atom.bound)}.",
            )
        if hi < atom.bound:
            return AtomResult(
                atom=atom,
                outcome="CONFIRMED",
                evidence=f"{_measured(c)}: the whole interval is below {_pct(atom.bound)}.",
            )
        need = opportunities_to_separate(c.tally.rate, atom.bound, c.opportunities)
        return AtomResult(
            atom=atom,
            outcome="INCONCLUSIVE",
            evidence=f"{_measured(c)}: the interval straddles {_pct(atom.bound)}; "
            f"{_more(need, noun)} at this rate would decide it.",
        )
    bound = int(atom.bound)
    if c.count > bound:
        allowed = "none allowed" if bound == 0 else f"at most {bound} allowed"
        return AtomResult(atom=atom, outcome="REFUTED", evidence=f"{_measured(c)}; {allowed}.")
    if hi < tolerance:
        return AtomResult(
            atom=atom,
            outcome="CONFIRMED",
            evidence=f"{_measured(c)}: the upper bound is below the {_pct(tolerance)} tolerance.",
        )
    need = opportunities_for_upper_bound(c.count, tolerance) - c.opportunities
    return AtomResult(
        atom=atom,
        outcome="INCONCLUSIVE",
        evidence=f"{_measured(c)}: the upper bound {_pct(hi)} is not below the "
        f"{_pct(tolerance)} tolerance; {_more(need, noun)} without a {c.name} would confirm it.",
    )


def judge_claim(claim: Claim, evidence: Evidence) -> ClaimResult:
    """REFUTED beats INCONCLUSIVE beats CONFIRMED across the claim's atoms."""
    results = tuple(
        judge_atom(
            a,
            evidence.classes.get(a.anomaly_class)
            or ClassTally(name=a.anomaly_class, error="not in the evidence"),
            claim.tolerance,
        )
        for a in claim.predicate
    )
    outcomes = {r.outcome for r in results}
    outcome: Outcome = (
        "REFUTED"
        if "REFUTED" in outcomes
        else "INCONCLUSIVE"
        if "INCONCLUSIVE" in outcomes
        else "CONFIRMED"
    )
    notes = tuple(evidence.problems)
    if outcome == "CONFIRMED" and notes:
        # Anomalies a partial history shows are real; an absence of them proves less.
        outcome = "INCONCLUSIVE"
    witness, witness_class = "", ""
    if outcome == "REFUTED":
        refuting = [r.atom.anomaly_class for r in results if r.outcome == "REFUTED"]
        for name in [*refuting, *claim.anomaly_classes]:
            c = evidence.classes.get(name)
            if c is not None and c.first_witness:
                witness, witness_class = c.first_witness, name
                break
    return ClaimResult(
        claim=claim,
        outcome=outcome,
        atoms=results,
        witness=witness,
        witness_class=witness_class,
        notes=notes,
    )


def judge_claims(claims: Sequence[Claim], evidence: Evidence) -> tuple[ClaimResult, ...]:
    return tuple(judge_claim(c, evidence) for c in claims)
