"""The scripted driver: plays a plan's scans through a recording client.

Each scan script runs as its own task: start the scan as its tenant, poll its
status every ``poll_interval`` (fetching results every ``results_every`` polls),
let another tenant probe it once, and after a terminal state keep polling for
``linger`` of the retention window, then fetch results one last time. Nothing
here judges answers; it only records them.

The contract's shape decides two things: without a results endpoint
(``results_path = ""``) no results are fetched (the status answer carries them), and
without tenants (``tenancy = "none"``) a probe asks the status of a never-issued id
instead of another tenant's scan.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from harness.run.client import ScanClient
from harness.run.plan import Plan, ScanScript

TERMINAL = frozenset({"complete", "failed"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Real-time parameters of a run, in seconds."""

    t0: float  # time.monotonic() at the start of the run
    scale: float  # service seconds -> real seconds
    retention_s: float
    scan_deadline_s: float
    end: float  # time.monotonic() when every script must stop

    def at(self, service_s: float) -> float:
        return self.t0 + service_s * self.scale


@dataclass
class LiveCounts:
    """Raw tallies for the progress line (not a verdict: checkers decide)."""

    ops: int = 0
    scans_started: int = 0
    scans_finished: int = 0
    not_found: int = 0  # owner polls that said not_found
    results_404: int = 0
    errors: int = 0  # fail / info outcomes
    suspicious: dict[str, int] = field(default_factory=dict)


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class ScriptedDriver:
    """Runs every scan script of a plan; see the module docstring."""

    def __init__(self, client: ScanClient, plan: Plan, timing: Timing) -> None:
        self.client = client
        self.plan = plan
        self.timing = timing
        self.counts = LiveCounts()

    def _tally(self, outcome: str, kind: str, body_status: str, http_status: int) -> None:
        self.counts.ops += 1
        if outcome != "ok":
            self.counts.errors += 1
        elif kind == "status" and body_status == "not_found":
            self.counts.not_found += 1
        elif kind == "results" and body_status == "not_found":
            self.counts.results_404 += 1

    async def _status(self, tenant: str, scan_id: str) -> str:
        done = await self.client.status(tenant, scan_id)
        self._tally(done.outcome, "status", done.body_status, done.http_status)
        return done.body_status if done.outcome == "ok" else ""

    async def _results(self, tenant: str, scan_id: str) -> None:
        if not self.client.contract.has_results:
            return
        done = await self.client.results(tenant, scan_id)
        self._tally(done.outcome, "results", done.body_status, done.http_status)

    async def _probe(self, prober: str, scan_id: str) -> None:
        # A probe's not_found / 404 is the right answer: count only the ops.
        contract = self.client.contract
        if not contract.tenants:  # no tenants: ask about an id that was never issued
            answers = [await self.client.never_issued(prober)]
        else:
            answers = [await self.client.status(prober, scan_id)]
            if contract.has_results:
                answers.append(await self.client.results(prober, scan_id))
        for done in answers:
            self.counts.ops += 1
            self.counts.errors += done.outcome != "ok"

    def _done(self, polls: int, deadline: float, linger_until: float | None, end: float) -> bool:
        now = time.monotonic()
        if now >= end:
            return True
        if self.plan.scenario.polls:  # a fixed number of polls (seed-repro)
            return polls >= self.plan.scenario.polls
        if linger_until is None:
            return now >= deadline
        return now >= linger_until

    async def run_script(self, script: ScanScript) -> None:
        t = self.timing
        scenario = self.plan.scenario
        await _sleep_until(t.at(script.start_s))
        if time.monotonic() >= t.end:
            return
        scan_id = await self.client.discover(
            script.tenant, filters=dict(script.filters) or None, fail=script.fail
        )
        self.counts.ops += 1
        if scan_id is None:
            self.counts.errors += 1
            return
        self.counts.scans_started += 1
        accepted = time.monotonic()
        interval = scenario.poll_interval * t.scale
        end = t.end
        if scenario.polls:
            # A fixed poll count is the scenario's promise: the plan's end assumed the
            # scan was accepted at once and every answer took no time, so a slow create
            # or a cold worker would cut the last polls. Allow twice the planned span from
            # acceptance (still bounded when the service stalls).
            end = max(end, accepted + 2 * (scenario.polls + 2) * interval)
        deadline = min(end, accepted + t.scan_deadline_s + interval)
        linger_until: float | None = None
        polls = 0
        next_poll = accepted + interval
        while True:
            await _sleep_until(next_poll)
            if self._done(polls, deadline, linger_until, end):
                break
            word = await self._status(script.tenant, scan_id)
            polls += 1
            if polls % scenario.results_every == 0:
                await self._results(script.tenant, scan_id)
            if script.prober and polls == script.probe_at_poll:
                await self._probe(script.prober, scan_id)
            if word in TERMINAL and linger_until is None and not scenario.polls:
                linger_until = time.monotonic() + scenario.linger * t.retention_s
                await self._results(script.tenant, scan_id)
            next_poll += interval
            if next_poll < time.monotonic():  # fell behind (a stalled service): don't burst
                next_poll = time.monotonic() + interval
        if time.monotonic() < end + interval:
            await self._results(script.tenant, scan_id)
            if script.prober:
                await self._probe(script.prober, scan_id)
        self.counts.scans_finished += 1

    async def run(self) -> None:
        await asyncio.gather(*(self.run_script(s) for s in self.plan.scans))
