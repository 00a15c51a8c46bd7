"""The service's clock: every time the reference service reads goes through one.

Production reads the system clocks (:data:`SYSTEM_CLOCK`). Unit tests inject a
virtual clock that moves with a virtual-time event loop, so the mechanisms run
deterministically and in no real time; sleeps already go through the event loop.

>>> SYSTEM_CLOCK.monotonic() <= SYSTEM_CLOCK.monotonic()
True
>>> SYSTEM_CLOCK.wall() > 1.7e9
True
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where the service reads time."""

    def wall(self) -> float:
        """Seconds since the epoch, like :func:`time.time`."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds, like :func:`time.monotonic`."""
        ...


class SystemClock:
    """The machine's clocks."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()
