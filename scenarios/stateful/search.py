"""How explore searches: seeds, then Hypothesis on parallel lanes, then minimisation.

A *lane* is one cluster (its own workers, router and Redis) and the one thread
that uses it. An example waits on the service most of the time (a scan of 2 s,
polls every few hundred ms), so two lanes run about twice the examples in the
same time on two cores. The search goes in three phases:

1. **seeds** (:mod:`harness.explore.seeds`): one short schedule per kind of bug,
   cheapest first, each lane taking the next one; the first that fails ends it;
2. **random search**, only when every seed passed: Hypothesis on every lane at
   once until they have run ``max_examples`` examples between them (lane *k* > 0
   draws from its own fixed seed under the derandomized ``ci`` profile, so each
   lane draws the same examples every run; which lane runs the last few depends
   on timing); once a lane fails, the other lanes stop and that lane's
   Hypothesis shrinks for ``shrink_budget_s``;
3. **minimisation by replay**: the smallest failure is pinned to the workers that
   served it, then its steps are dropped one at a time. A candidate runs on every
   lane at once and is kept only if *every* run shows the failure again, so what is
   written reproduces (a failure that shows one time in two is not made smaller).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hypothesis import settings
from hypothesis.errors import HypothesisException
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from harness.errors import InfrastructureError
from harness.explore.executor import Example, ServiceTiming, reset_cluster
from harness.explore.lanes import Lane, await_all, until
from harness.explore.seeds import seeds
from harness.explore.steps import Step

if TYPE_CHECKING:
    from scenarios.stateful.machine import ExploreConfig

Progress = Callable[[str], None]
Ran = tuple[tuple[Step, tuple[int, ...]], ...]  # each step and the workers that served it
_MAX_MINIMISE_RUNS: Final = 60
_PINNABLE: Final = frozenset({"discover", "rediscover", "status", "results", "probe"})


class ShrinkBudgetSpent(BaseException):
    """Stops hypothesis's shrinking (a BaseException: hypothesis does not catch it)."""


class BudgetSpent(ShrinkBudgetSpent):
    """The overall ``--budget`` is spent: the search (or its shrinking) ends here."""


class Stopped(ShrinkBudgetSpent):
    """Another lane found a failure, or the user interrupted: this lane stops."""


class Enough(ShrinkBudgetSpent):
    """The lanes have run ``max_examples`` examples between them."""


@dataclass(eq=False)
class Shared:
    """What the lanes share across examples (a machine object lives for one example)."""

    lanes: list[Lane]
    timing: ServiceTiming
    config: ExploreConfig
    directory: Path
    progress: Progress | None
    examples: int = 0
    max_examples: int | None = None  # the random search's examples, all lanes together
    seeds_run: int = 0
    failures: list[tuple[Ran, dict[str, int]]] = field(default_factory=list)
    whole: dict[int, tuple[Step, ...]] = field(default_factory=dict)  # failure -> its steps
    seed_of: dict[int, int] = field(default_factory=dict)  # failure -> its seed's number
    infra: list[str] = field(default_factory=list)
    first_failure_at: float | None = None
    found_by: int | None = None  # the lane whose failure hypothesis shrinks
    reset_s: list[float] = field(default_factory=list)
    began: float = field(default_factory=time.perf_counter)
    phase: str = "searching"
    budget_spent: bool = False
    minimised: int | None = None  # steps of the minimised failure so far
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    searching: set[int] = field(default_factory=set)  # lanes whose Hypothesis drew an example

    def over_budget(self, ahead_s: float = 0.0) -> bool:
        """Whether the budget is spent (or will be, ``ahead_s`` seconds from now)."""
        budget = self.config.budget_s
        return budget is not None and time.perf_counter() - self.began + ahead_s > budget

    def check(self, lane: Lane) -> None:
        """Raise when this lane must stop: interrupted, another lane found a failure
        (:class:`Stopped`) or the overall budget is spent (:class:`BudgetSpent`)."""
        if self.stop.is_set() or self.found_by not in (None, lane.index):
            raise Stopped
        if self.over_budget():
            self.budget_spent = True
            raise BudgetSpent

    def example(self, lane: Lane, label: str | None = None) -> Example:
        """A fresh example on ``lane`` from clean state (numbered when no ``label``)."""
        with self.lock:
            if label is None:
                self.searching.add(lane.index)
                cap = self.max_examples if self.first_failure_at is None else None
                if cap is not None and self.examples >= cap:
                    raise Enough  # (shrinking runs past it, bounded by its own budget)
                self.examples += 1
                label = f"example-{self.examples}"
        reset = reset_cluster(lane.cluster, path=self.config.contract.meta_path)
        with self.lock:
            self.reset_s.append(reset)
        return Example(
            lane.cluster,
            lane.loop(),
            self.directory,
            timing=self.timing,
            tenants=self.config.tenants,
            label=label,
            contract=self.config.contract,
        )

    def found(self, counts: dict[str, int]) -> dict[str, int]:
        """The classes that count with an anomaly, in ``config.classes`` order."""
        return {c: counts[c] for c in self.config.classes if counts.get(c, 0) > 0}

    def record(
        self, lane: Lane, ran: Ran, until: int, found: dict[str, int], seed: int = 0
    ) -> None:
        """A failing example: the steps up to the one that showed it, and all of them."""
        with self.lock:
            if seed:
                self.seed_of[len(self.failures)] = seed
            self.whole[len(self.failures)] = tuple(s for s, _ in ran)
            self.failures.append((ran[:until], found))
            first = self.first_failure_at is None and self.phase == "searching"
            if self.first_failure_at is None:
                self.first_failure_at = time.perf_counter()
                self.found_by = lane.index
            if first:  # hypothesis shrinks it now (a failing seed is minimised instead)
                self.phase = "shrinking"
        if first and self.progress is not None:
            self.progress(f"explore: first failure: {self.best()}; shrinking")

    def best(self) -> str:
        if not self.failures:
            return "none yet"
        steps, found = min(self.failures, key=lambda f: len(f[0]))
        return f"{next(iter(found))} in {self.minimised or len(steps)} steps"

    def status(self) -> str:
        """One progress line: seeds and examples, best candidate, elapsed and budget."""
        budget = self.config.budget_s
        of = f" of {budget:.0f} s budget" if budget is not None else " (no budget)"
        lanes = f" on {len(self.lanes)} lanes" if len(self.lanes) > 1 else ""
        return (
            f"explore: {self.phase}: {self.seeds_run} seeds, {self.examples} examples{lanes}, "
            f"best: {self.best()}, {time.perf_counter() - self.began:.0f} s{of}"
        )


class Ticker:
    """Prints ``status()`` every ``every_s`` seconds from a thread until stopped (a step
    may block a lane for a whole scan)."""

    def __init__(self, status: Callable[[], str], progress: Progress, every_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._tick, args=(status, progress, every_s), daemon=True
        )

    def _tick(self, status: Callable[[], str], progress: Progress, every_s: float) -> None:
        while not self._stop.wait(every_s):
            progress(status())

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _await(shared: Shared, futures: Sequence[cf.Future[Any]]) -> list[Any]:
    """Every future's result; on Ctrl-C the lanes stop (their steps are cancelled)."""
    return await_all(futures, shared.lanes, shared.stop)


def run_schedule(
    shared: Shared, lane: Lane, steps: tuple[Step, ...], label: str
) -> tuple[Ran, dict[str, int], int]:
    """Run ``steps`` from clean state on ``lane`` (in its thread): what ran, what it
    showed, and how many steps it took to show the first class found."""
    example = shared.example(lane, label)
    ran: list[tuple[Step, tuple[int, ...]]] = []
    try:
        for step in steps:
            ran.append((step, example.run(step)))
    finally:
        found = shared.found(example.close_and_judge())
    until = (example.steps_until(next(iter(found))) if found else None) or len(steps)
    return tuple(ran), found, until


def _on_lanes(shared: Shared, steps: tuple[Step, ...], label: str) -> list[dict[str, int]]:
    """``steps`` run on every lane at once: what each run showed."""
    futures = [
        lane.pool.submit(run_schedule, shared, lane, steps, f"{label}-lane{lane.index}")
        for lane in shared.lanes
    ]
    return [found for _, found, _ in _await(shared, futures)]


def _run_seeds(shared: Shared, say: Progress) -> None:
    cfg = shared.config
    todo = deque(seeds(shared.timing, workers=cfg.workers, tenants=cfg.tenants, rules=cfg.rules))
    if not todo:
        return
    shared.phase = "seeds"
    say(f"explore: {len(todo)} seed schedules first, then the random search")

    def work(lane: Lane) -> None:
        while True:
            with shared.lock:
                if not todo or shared.failures or shared.stop.is_set() or shared.over_budget():
                    return
                seed = todo.popleft()
                shared.seeds_run += 1
                number = shared.seeds_run
            ran, found, until = run_schedule(shared, lane, seed.steps, f"seed-{number}")
            if found:
                say(f"explore: seed {seed.name!r} showed {', '.join(found)}")
                shared.record(lane, ran, until, found, seed=number)

    _await(shared, [lane.pool.submit(work, lane) for lane in shared.lanes])


def _hypothesis(
    machine: type[RuleBasedStateMachine], options: dict[str, Any]
) -> BaseException | None:
    """One lane's Hypothesis search: the exception it ended with (None: all passed)."""
    try:
        run_state_machine_as_test(machine, settings=settings(**options))
    except InfrastructureError:
        raise
    except (ShrinkBudgetSpent, AssertionError, HypothesisException, ExceptionGroup) as exc:
        return _our_stop(exc) or exc
    return None


def _our_stop(exc: BaseException) -> ShrinkBudgetSpent | None:
    """The stop we raised, when Hypothesis reports it as another error: a stop raised
    before an example drew anything reads to its engine as flaky data generation."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ShrinkBudgetSpent):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _drawing(shared: Shared, index: int, future: cf.Future[Any]) -> bool:
    """Whether lane ``index``'s Hypothesis has begun an example (or ended)."""
    return index in shared.searching or future.done()


def _run_lanes(
    shared: Shared,
    options: dict[str, Any],
    machine_for: Callable[[Lane], type[RuleBasedStateMachine]],
) -> None:
    shared.phase = "searching"
    # Shared work, not shares: the lanes draw until they have run max_examples between
    # them (a lane that drew long waits does fewer), each also bounded by it alone.
    shared.max_examples = int(options["max_examples"])
    futures = []
    for lane in shared.lanes:
        machine = machine_for(lane)
        if options.get("derandomize") and lane.index:
            # its own fixed seed: the same examples every run, not lane 0's again
            machine._hypothesis_internal_use_seed = lane.index
        future = lane.pool.submit(_hypothesis, machine, options)
        futures.append(future)
        # Hypothesis's set-up reads the machine's source (inspect.getsource: ast.parse),
        # which two threads at once can break on CPython 3.11 ("AST constructor
        # recursion depth mismatch", seen once in 14 runs): the next lane starts once
        # this one is drawing examples.
        until(functools.partial(_drawing, shared, lane.index, future), shared.lanes, shared.stop)
    ended = _await(shared, futures)
    if shared.infra:
        raise InfrastructureError(shared.infra[-1])
    gave_up = [e for e in ended if e is not None and not isinstance(e, ShrinkBudgetSpent)]
    if gave_up and not shared.failures and not shared.budget_spent:
        exc = gave_up[0]  # hypothesis itself gave up (a health check, say)
        raise InfrastructureError(f"hypothesis: {type(exc).__name__}: {exc}") from exc


def _pinned(steps: Ran) -> tuple[Step, ...]:
    """A step sent through the router whose requests one worker served is pinned to it,
    so its replay does not depend on the router's rotation. A probe whose two requests
    went to two workers stays routed (each example aligns the rotation the same way)."""
    out = []
    for step, served in steps:
        if step.rule in _PINNABLE and step.pin < 0 and len(set(served)) == 1 and served[0] >= 0:
            step = replace(step, pin=served[0])
        out.append(step)
    return tuple(out)


def _minimise(
    shared: Shared, steps: tuple[Step, ...], target: str, found: dict[str, int]
) -> tuple[tuple[Step, ...], dict[str, int]]:
    """Drop one step at a time (last first) while ``target`` still shows on every
    lane: every candidate is replayed from clean state, so what is kept reproduces."""
    runs = 0
    changed = True
    shared.phase = "minimising"
    shared.minimised = len(steps)
    last_s = 0.0  # the last run's seconds: a run that would end past the budget is not begun
    while changed and runs < _MAX_MINIMISE_RUNS:
        changed = False
        for i in reversed(range(1, len(steps))):  # step 0 starts the first scan
            if runs >= _MAX_MINIMISE_RUNS or i >= len(steps) or shared.over_budget(last_s):
                continue
            candidate = steps[:i] + steps[i + 1 :]
            runs += 1
            begin = time.perf_counter()
            got = _on_lanes(shared, candidate, f"minimise-{runs}")
            last_s = time.perf_counter() - begin
            if all(target in g for g in got):
                steps, found, changed = candidate, got[0], True
                shared.minimised = len(steps)
    return steps, found


def _best(shared: Shared) -> int:
    """The failure to minimise: the smallest; of equal size the earliest seed (the lanes
    finish the seeds they began, so which failed first is timing, not a choice: the
    seed list's order is), else the latest example."""
    return min(
        range(len(shared.failures)),
        key=lambda i: (len(shared.failures[i][0]), shared.seed_of.get(i, 0), -i),
    )


def search(
    shared: Shared,
    options: dict[str, Any],
    say: Progress,
    machine_for: Callable[[Lane], type[RuleBasedStateMachine]],
) -> tuple[tuple[Step, ...], dict[str, int]]:
    """Seeds, Hypothesis's search and shrinking, then the minimisation by replay: the
    smallest failure's steps and what it showed (empty when nothing was found)."""
    if shared.config.seeds:
        _run_seeds(shared, say)
    if not shared.failures and not shared.over_budget():
        _run_lanes(shared, options, machine_for)
    if not shared.failures:
        shared.budget_spent = shared.budget_spent or shared.over_budget()
        return (), {}
    say(f"explore: found {shared.best()}; minimising by replay")
    shared.phase = "minimising"
    index = _best(shared)
    best, found = shared.failures[index]
    target = next(iter(found))
    steps = _pinned(best)
    # Cut short and pinned: keep it only if the failure stays (else the example as it ran)
    got = _on_lanes(shared, steps, "pinned")
    if all(target in g for g in got):
        found = got[0]
    else:
        steps = shared.whole[index]
    return _minimise(shared, steps, target, found)
