"""Virtual time for the in-process fake (unit tests only): deterministic, and instant.

:class:`VirtualTimeLoop` is an asyncio event loop whose clock jumps: whenever it
would wait for its next timer with nothing ready, it advances its virtual clock
to that timer instead of sleeping. The reference service reads the same clock
(``create_app(clock=...)``), and fakeredis's expiry is pointed at it while a
test runs, so TTLs, sleeps, leases and timeouts all agree, however loaded the
machine is. Everything in these tests runs in the loop (no threads, no sockets),
which is what makes jumping safe: nothing outside the loop can be overtaken.

>>> async def nap() -> float:
...     loop = asyncio.get_running_loop()
...     start = loop.time()
...     await asyncio.sleep(3600)
...     return loop.time() - start
>>> run_virtual(nap())
3600.0
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
import types
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import fakeredis._helpers
import fakeredis._socket._base

T = TypeVar("T")


class VirtualClock:
    """Monotonic and wall readings that move only when the loop jumps."""

    def __init__(self) -> None:
        self._monotonic = 1000.0
        self._wall = time.time()

    def monotonic(self) -> float:
        return self._monotonic

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += seconds


class _JumpingSelector(selectors.BaseSelector):
    """A selector that answers "time passed" instead of blocking on a timer."""

    def __init__(self, clock: VirtualClock) -> None:
        self._inner = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only another thread could wake the loop
            return self._inner.select(None)
        self._clock.advance(timeout)
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Any:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a :class:`VirtualClock`."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        super().__init__(selector=_JumpingSelector(clock))

    def time(self) -> float:
        return self.clock.monotonic()


@contextlib.contextmanager
def _fakeredis_on(clock: VirtualClock) -> Iterator[None]:
    """Point fakeredis's expiry clock at ``clock`` for the duration."""
    shim = types.SimpleNamespace(time=clock.wall)
    modules = (fakeredis._socket._base, fakeredis._helpers)
    saved = [m.time for m in modules]  # type: ignore[attr-defined]
    try:
        for m in modules:
            m.time = shim  # type: ignore[attr-defined]
        yield
    finally:
        for m, original in zip(modules, saved, strict=True):
            m.time = original  # type: ignore[attr-defined]


def current_clock() -> VirtualClock:
    """The clock of the running virtual-time loop (for ``create_app(clock=...)``)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualTimeLoop):
        raise RuntimeError("not running on a VirtualTimeLoop: use run_virtual()")
    return loop.clock


def run_virtual(coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop (``timeout_s`` is virtual)."""
    clock = VirtualClock()
    loop = VirtualTimeLoop(clock)
    try:
        with _fakeredis_on(clock):
            main = coro if timeout_s is None else asyncio.wait_for(coro, timeout_s)
            return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
