"""Calibration: measure how long the target's scans take, and derive the run's clock.

The scenario catalogue is written in the reference service's seconds (a scan
takes :data:`CATALOGUE_SCAN_S` service seconds, polls every 3, a 30 s Redis
stall). A service that states no time scale (no ``--time-scale``, no
``time_scale``/``scan_s`` in its contract, no meta endpoint saying it) is
*calibrated* before its scenario: a short fault-free phase starts a few scans
(two tenants, distinct filters), polls each one densely (first after
``first_poll_s``, each gap ``growth`` times the last, never more than
``fraction`` of the time already waited nor ``max_poll_s``; after a ``not_found``
it asks again at once, up to ``not_found_retries`` times, so that a worker that
knows the scan is reached) until it says
``complete`` or ``failed`` (canonical words, see docs/contract.md), and fetches
its results once. Every request is recorded in the run's history under the
proc name ``calibrate`` (shard ``calibrate.jsonl``): it is traffic the service
really served, so it is judged like the rest, and a calibration that fails is
judged from it too.

From the times to terminal it derives (:func:`derive`, pure):

- ``time_scale`` = median scan seconds / :data:`CATALOGUE_SCAN_S`;
- ``scan_deadline_s`` = p95 scan seconds x ``slack`` (3 by default, recorded);
- ``poll_floor_s`` = ``LATENCY_POLLS`` x the median status answer latency: the
  run never polls faster than the service answers.

It fails (:class:`CalibrationError`, exit 3, one line with the evidence), never
falling back to a default, when no scan is accepted, when the app answers 5xx
in this fault-free phase, or when fewer than half of the accepted scans finish
within ``timeout_s`` real seconds.

>>> c = derive([_timing(1.0), _timing(1.2), _timing(1.1)], latencies=[0.004], slack=3.0)
>>> round(c.median_s, 3), round(c.p95_s, 3), c.n
(1.1, 1.19, 3)
>>> round(c.time_scale * CATALOGUE_SCAN_S, 3), round(c.scan_deadline_s, 2)
(1.1, 3.57)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from harness.errors import InfrastructureError
from harness.history.writer import Completion, HistoryWriter
from harness.run.client import ScanClient
from harness.run.plan import DEFAULT_SCAN_S
from harness.targets.contract import Contract

__all__ = [
    "CALIBRATE_PROC",
    "CATALOGUE_SCAN_S",
    "Calibration",
    "CalibrationError",
    "CalibrationSettings",
    "ScanTiming",
    "calibrate",
    "derive",
    "percentile",
]

# The one place that says how long the scan is that the scenario catalogue is written
# against: the reference service's scan, in service seconds (it took 160-174).
CATALOGUE_SCAN_S: Final[float] = DEFAULT_SCAN_S
CALIBRATE_PROC: Final = "calibrate"
LATENCY_POLLS: Final = 2.0  # the run's polls are at least this many answer latencies apart
_TERMINAL: Final = ("complete", "failed")
_FILTERS: Final[tuple[dict[str, str], ...]] = ({}, {"asset": "BTC"}, {"asset": "ETH"})


class CalibrationError(InfrastructureError):
    """Calibration could not measure the scans: the verdict is unknown (exit 3).

    ``calibration`` holds what was measured before it failed (for run.json)."""

    def __init__(self, message: str, calibration: Calibration | None = None) -> None:
        super().__init__(message)
        self.calibration = calibration


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationSettings:
    """How to calibrate; the defaults are ``scanproof run``'s."""

    scans: int = 3
    tenants: int = 2
    timeout_s: float = 300.0  # real seconds for the whole phase
    slack: float = 3.0  # scan deadline = p95 x slack
    first_poll_s: float = 0.05
    growth: float = 1.5
    fraction: float = 0.05  # a poll gap is never more than this share of the time waited
    max_poll_s: float = 2.0
    # After a not_found for an accepted scan, ask again at once up to this many times: the
    # next request goes to another worker, and one that knows the scan may still be there
    # (a service that keeps scans in one worker's memory would otherwise be polled, by bad
    # luck of the rotation, only on workers that never knew it until it expired).
    not_found_retries: int = 7
    max_rps: float | None = None  # the run's bound on requests per second (--max-rps)
    keep_alive: bool = True  # False: a new connection per request (one --target)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_rps": self.max_rps,
            "keep_alive": self.keep_alive,
            "scans": self.scans,
            "tenants": self.tenants,
            "timeout_s": self.timeout_s,
            "slack": self.slack,
            "first_poll_s": self.first_poll_s,
            "growth": self.growth,
            "fraction": self.fraction,
            "max_poll_s": self.max_poll_s,
            "not_found_retries": self.not_found_retries,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanTiming:
    """One calibration scan: how long it took to say it was finished.

    ``seconds`` runs from the discover's invoke to the middle of the interval in
    which it finished (between the last answer that still said ``scanning`` and
    the first terminal one); ``resolution_s`` is half that interval. None: it
    never said it was finished (``state`` is its last canonical word or HTTP code)."""

    scan_id: str
    tenant: str
    filters: str = ""
    seconds: float | None = None
    resolution_s: float = 0.0
    state: str = ""
    polls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "tenant": self.tenant,
            "filters": self.filters,
            "seconds": self.seconds,
            "resolution_s": self.resolution_s,
            "state": self.state,
            "polls": self.polls,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """What calibration measured and what it derived (real seconds)."""

    scans: tuple[ScanTiming, ...]
    n: int  # scans that finished: the measurements
    median_s: float
    p95_s: float
    spread_s: float  # slowest minus fastest
    time_scale: float
    scan_deadline_s: float
    poll_floor_s: float
    answer_latency_s: float  # median status answer latency
    slack: float
    catalogue_scan_s: float = CATALOGUE_SCAN_S
    settings: CalibrationSettings = field(default_factory=CalibrationSettings)
    elapsed_s: float = 0.0
    requests: int = 0
    error: str = ""  # why it failed ("" when it did not)

    def stated(self) -> dict[str, float]:
        """The values a judging window takes from calibration."""
        return {"time_scale": self.time_scale, "scan_deadline_s": self.scan_deadline_s}

    def to_json(self) -> dict[str, Any]:
        """run.json's ``calibration`` block (a value never measured is null)."""
        doc = {
            "scan_seconds": [s.seconds for s in self.scans if s.seconds is not None],
            "n": self.n,
            "median_s": self.median_s,
            "p95_s": self.p95_s,
            "spread_s": self.spread_s,
            "time_scale": self.time_scale,
            "scan_deadline_s": self.scan_deadline_s,
            "poll_floor_s": self.poll_floor_s,
            "answer_latency_s": self.answer_latency_s,
            "slack": self.slack,
            "catalogue_scan_s": self.catalogue_scan_s,
            "elapsed_s": self.elapsed_s,
            "requests": self.requests,
            "settings": self.settings.to_json(),
            "scans": [s.to_json() for s in self.scans],
            "error": self.error,
        }
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in doc.items()}

    def snippet(self) -> str:
        """Lines to paste into a contract file, so later runs need no calibration."""
        return (
            f"# measured by scanproof calibrate: {self.n} scans, median {self.median_s:.3g} s, "
            f"p95 {self.p95_s:.3g} s\n"
            f"time_scale = {self.time_scale:.6g}\n"
            f"scan_deadline_s = {self.scan_deadline_s:.4g}\n"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([5.0], 95)
    (2.5, 5.0)
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def derive(
    scans: Sequence[ScanTiming],
    *,
    latencies: Sequence[float],
    slack: float = 3.0,
    catalogue_scan_s: float = CATALOGUE_SCAN_S,
    settings: CalibrationSettings | None = None,
) -> Calibration:
    """The time scale, deadline and poll floor from measured scans (pure).

    ``latencies``: real seconds of status answers (the poll floor). Raises
    :class:`CalibrationError` when no scan finished.

    >>> derive([_timing(None, "scanning")], latencies=[])
    Traceback (most recent call last):
    ...
    harness.run.calibrate.CalibrationError: calibration: 0 of 1 accepted scans finished ...
    """
    finished = [s.seconds for s in scans if s.seconds is not None]
    if not finished:
        raise CalibrationError(
            f"calibration: 0 of {len(scans)} accepted scans finished (last answers: "
            f"{_last_words(scans)})"
        )
    median = percentile(finished, 50)
    p95 = percentile(finished, 95)
    latency = percentile(latencies, 50) if latencies else 0.0
    return Calibration(
        scans=tuple(scans),
        n=len(finished),
        median_s=median,
        p95_s=p95,
        spread_s=max(finished) - min(finished),
        time_scale=median / catalogue_scan_s,
        scan_deadline_s=p95 * slack,
        poll_floor_s=LATENCY_POLLS * latency,
        answer_latency_s=latency,
        slack=slack,
        catalogue_scan_s=catalogue_scan_s,
        settings=settings or CalibrationSettings(slack=slack),
    )


def _timing(seconds: float | None, state: str = "complete") -> ScanTiming:
    """A measured scan for examples and tests."""
    return ScanTiming(scan_id="s", tenant="t", seconds=seconds, state=state)


def _last_words(scans: Sequence[ScanTiming]) -> str:
    words = Counter(s.state or "no answer" for s in scans)
    return ", ".join(f"{word!r} x {count}" for word, count in words.most_common())


def _answer(done: Completion) -> str:
    """How an answer is named in evidence: its canonical word, else its HTTP code."""
    if done.outcome == "ok" and done.body_status:
        return done.body_status
    if done.http_status:
        return f"HTTP {done.http_status}"
    return done.error.split(":")[0] or done.outcome


class _Recorder(HistoryWriter):
    """The calibration shard, keeping every answer in memory too (for the evidence)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, proc=CALIBRATE_PROC)
        self.kinds: dict[str, str] = {}
        self.answers: list[tuple[str, Completion]] = []

    def invoke(self, **fields: Any) -> str:
        op = super().invoke(**fields)
        self.kinds[op] = str(fields.get("kind", ""))
        return op

    def complete(self, op_id: str, completion: Completion) -> None:
        super().complete(op_id, completion)
        self.answers.append((self.kinds.pop(op_id, ""), completion))


@dataclass(slots=True)
class _Phase:
    settings: CalibrationSettings
    started: float
    accepted: int = 0
    finished: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def give_up_at(self, scan_start: float) -> float:
        """When to stop waiting for a scan: the phase's cap, or once at least half the
        scans have finished, ``slack`` times the slowest of them (it would be late)."""
        limit = self.started + self.settings.timeout_s
        if self.finished and 2 * len(self.finished) >= self.accepted:
            limit = min(limit, scan_start + self.settings.slack * max(self.finished))
        return limit


async def _follow(
    client: ScanClient, phase: _Phase, tenant: str, scan_id: str, filters: str, start: float
) -> ScanTiming:
    s = phase.settings
    gap = s.first_poll_s
    unfinished_at = start  # the last proof the scan was unfinished (an answer's invoke)
    next_poll = start + gap
    polls = 0
    misses = 0  # not_found answers in a row
    state = ""
    while next_poll < phase.give_up_at(start):
        await asyncio.sleep(max(0.0, next_poll - time.monotonic()))
        invoked = time.monotonic()
        done = await client.status(tenant, scan_id)
        answered = time.monotonic()
        polls += 1
        state = _answer(done)
        if done.http_status >= 500:
            break  # the whole calibration fails: see calibrate()
        if done.outcome == "ok":
            phase.latencies.append(answered - invoked)
            if done.body_status in _TERMINAL:
                seconds = (unfinished_at + answered) / 2 - start
                phase.finished.append(seconds)
                if client.contract.has_results:
                    await client.results(tenant, scan_id)
                return ScanTiming(
                    scan_id=scan_id,
                    tenant=tenant,
                    filters=filters,
                    seconds=seconds,
                    resolution_s=(answered - unfinished_at) / 2,
                    state=done.body_status,
                    polls=polls,
                )
            if done.body_status in ("scanning", "pending"):  # pending: not finished yet
                unfinished_at = invoked
            if done.body_status == "not_found" and misses < s.not_found_retries:
                misses += 1
                next_poll = answered  # at once, without growing the gap
                continue
        misses = 0
        waited = answered - start
        gap = min(gap * s.growth, max(s.first_poll_s, waited * s.fraction), s.max_poll_s)
        next_poll = max(answered, next_poll + gap)
    return ScanTiming(scan_id=scan_id, tenant=tenant, filters=filters, state=state, polls=polls)


async def _measure(
    base_url: str, contract: Contract, recorder: _Recorder, settings: CalibrationSettings
) -> tuple[list[ScanTiming], _Phase]:
    phase = _Phase(settings=settings, started=time.monotonic())
    tenants = [f"calibrate{i}" for i in range(max(1, settings.tenants))]
    async with ScanClient(
        base_url,
        recorder,
        contract=contract,
        max_rps=settings.max_rps,
        keep_alive=settings.keep_alive,
    ) as client:

        async def start(i: int) -> tuple[str, str, str, float]:
            tenant = tenants[i % len(tenants)]
            filters = _FILTERS[i % len(_FILTERS)]
            began = time.monotonic()
            scan_id = await client.discover(tenant, filters=filters or None)
            return tenant, scan_id or "", json.dumps(filters, sort_keys=True), began

        started = await asyncio.gather(*(start(i) for i in range(settings.scans)))
        accepted = [s for s in started if s[1]]
        phase.accepted = len(accepted)
        timings = await asyncio.gather(
            *(_follow(client, phase, t, sid, f, began) for t, sid, f, began in accepted)
        )
    return list(timings), phase


def _fail(message: str, calibration: Calibration) -> CalibrationError:
    said = (
        f"calibration: {message}; scanproof cannot measure how long a scan takes, so it "
        "will not guess a time scale: fix the app or the contract, or pass --time-scale "
        "(and --scan-deadline-s)"
    )
    return CalibrationError(said, replace(calibration, error=said))


def _summary(answers: Sequence[Completion]) -> str:
    said = Counter(_answer(a) for a in answers)
    return ", ".join(f"{word} x {count}" for word, count in said.most_common(3))


def calibrate(
    base_url: str,
    contract: Contract,
    run_dir: Path,
    settings: CalibrationSettings | None = None,
) -> Calibration:
    """Calibrate against the running cluster at ``base_url``; see the module docstring.

    Records every request into ``run_dir/calibrate.jsonl``. Raises
    :class:`CalibrationError` (exit 3) with the evidence in one line."""
    s = settings or CalibrationSettings()
    began = time.monotonic()
    recorder = _Recorder(run_dir)
    try:
        timings, phase = asyncio.run(_measure(base_url, contract, recorder, s))
    finally:
        recorder.close()
    answers = recorder.answers
    discovers = [c for kind, c in answers if kind == "discover"]
    elapsed = time.monotonic() - began
    try:
        measured = derive(timings, latencies=phase.latencies, slack=s.slack, settings=s)
    except CalibrationError:
        measured = None
    partial = measured or Calibration(
        scans=tuple(timings),
        n=0,
        median_s=math.nan,
        p95_s=math.nan,
        spread_s=math.nan,
        time_scale=math.nan,
        scan_deadline_s=math.nan,
        poll_floor_s=math.nan,
        answer_latency_s=math.nan,
        slack=s.slack,
        settings=s,
    )
    partial = replace(partial, elapsed_s=elapsed, requests=len(answers))
    if not timings:
        raise _fail(
            f"0 of {len(discovers)} discovers yielded a scan id (answers: {_summary(discovers)})",
            partial,
        )
    errors = [(kind, c) for kind, c in answers if c.http_status >= 500]
    if errors:
        kind, first = errors[0]
        raise _fail(
            f"the app answered HTTP 5xx to {len(errors)} of {len(answers)} requests in a "
            f"fault-free phase (first: {kind} HTTP {first.http_status})",
            partial,
        )
    if measured is None or 2 * partial.n < len(timings):
        raise _fail(
            f"{partial.n} of {len(timings)} accepted scans finished within {elapsed:.0f} s "
            f"(last answers: {_last_words(timings)}; allow more with --calibrate-timeout)",
            partial,
        )
    return partial
