"""Lanes: clusters used at once, each by one thread of its own.

An example or a replay repeat mostly waits on the service (a scan, polls, waits),
so two clusters side by side do about twice the work in the same time on two
cores. ``scanproof explore`` searches on lanes (``scenarios/stateful/search.py``)
and ``scanproof replay`` shares its repeats between them. A lane's event loop
lives in its thread: everything that touches the lane's cluster is submitted to
``lane.pool``.

.. code-block:: python

    stop = threading.Event()  # set by Ctrl-C in await_all: the lanes are not waited for
    with contextlib.ExitStack() as stack:
        lanes = start_lanes(stack, 2, lambda: Cluster.start(app=app), stop)
        results = await_all([lane.pool.submit(work, lane) for lane in lanes], lanes, stop)
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.cluster import Cluster

__all__ = ["Lane", "await_all", "start_lanes", "until"]


@dataclass(eq=False)
class Lane:
    """One cluster and the single thread that uses it (its event loop lives there)."""

    index: int
    cluster: Cluster
    pool: cf.ThreadPoolExecutor = field(
        default_factory=lambda: cf.ThreadPoolExecutor(1, thread_name_prefix="lane")
    )
    _runner: asyncio.Runner | None = None

    def loop(self) -> asyncio.Runner:
        """The lane's event loop runner; call it from the lane's thread only."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner

    def cancel(self) -> None:
        """Cancel what the lane's loop runs (from another thread): Ctrl-C must not wait
        for a step that sleeps through a scan."""
        runner = self._runner
        if runner is None:
            return
        try:
            loop = runner.get_loop()
            loop.call_soon_threadsafe(_cancel_all, loop)
        except RuntimeError:  # closed already
            pass

    def close(self, *, wait: bool = True) -> None:
        """Close the loop in its thread; ``wait=False`` (interrupted): leave a step that
        is still running to end on its own (its cluster is about to be stopped)."""
        if wait and self._runner is not None:
            self.pool.submit(self._runner.close).result()
        self.pool.shutdown(wait=wait, cancel_futures=True)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def until(ready: Callable[[], bool], lanes: Sequence[Lane], stop: threading.Event) -> None:
    """Return once ``ready()`` is true, asking every 50 ms (so that Ctrl-C reaches this
    thread); on Ctrl-C ``stop`` is set and every lane's running step is cancelled (a
    lane asleep in a long wait must not hold the exit)."""
    try:
        while not ready():
            time.sleep(0.05)
    except KeyboardInterrupt:
        stop.set()
        for lane in lanes:
            lane.cancel()
        raise


def await_all(
    futures: Sequence[cf.Future[Any]], lanes: Sequence[Lane], stop: threading.Event
) -> list[Any]:
    """Every future's result (the first exception raised), as :func:`until` waits."""
    until(lambda: all(f.done() for f in futures), lanes, stop)
    return [f.result() for f in futures]


def start_lanes(
    stack: contextlib.ExitStack, count: int, start: Callable[[], Cluster], stop: threading.Event
) -> list[Lane]:
    """``count`` lanes on clusters from ``start()``, each closed by ``stack`` before its
    cluster stops (without waiting for a step under way once ``stop`` is set)."""
    lanes = []
    for index in range(count):
        lane = Lane(index, stack.enter_context(start()))
        stack.callback(_close, lane, stop)
        lanes.append(lane)
    return lanes


def _close(lane: Lane, stop: threading.Event) -> None:
    lane.close(wait=not stop.is_set())
