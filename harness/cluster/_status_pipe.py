"""The status pipe: how the zygote and the workers tell the supervisor they are ready.

Each writes one line per event to an inherited pipe (writes under PIPE_BUF
bytes are atomic, so lines from several processes never interleave):
``zygote-ready <pid>``, ``zygote-error <message>``, ``forked <index> <pid>``,
``ready <index> <pid>``. A reader thread collects them; the supervisor waits
on a condition instead of polling sockets.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable


class StatusPipe:
    """Reads ``<verb> <args>`` lines that the zygote and the workers write."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self._cond = threading.Condition()
        self._ready: dict[int, int] = {}  # worker index -> pid that reported ready
        self._forked: dict[int, int] = {}
        self.zygote: str | None = None  # "ready" or the error message
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="scanproof-status", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        while not self._closed:
            readable, _, _ = select.select([self.read_fd], [], [], 0.2)
            if not readable or self._closed:
                continue
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return
            pending += chunk
            with self._cond:
                while b"\n" in pending:
                    raw, pending = pending.split(b"\n", 1)
                    verb, _, rest = raw.decode(errors="replace").partition(" ")
                    if verb == "ready":
                        index, pid = rest.split()
                        self._ready[int(index)] = int(pid)
                    elif verb == "forked":
                        index, pid = rest.split()
                        self._forked[int(index)] = int(pid)
                    elif verb == "zygote-ready":
                        self.zygote = "ready"
                    elif verb == "zygote-error":
                        self.zygote = rest
                self._cond.notify_all()

    def forget(self, index: int) -> None:
        with self._cond:
            self._ready.pop(index, None)
            self._forked.pop(index, None)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (checked on every line read) or ``timeout`` s."""
        with self._cond:
            return bool(self._cond.wait_for(predicate, timeout))

    def ready_pid(self, index: int) -> int | None:
        return self._ready.get(index)

    def forked_pid(self, index: int) -> int | None:
        return self._forked.get(index)

    def close(self) -> None:
        self._closed = True
        # With every writer dead, closing our own write end gives the reader EOF at once.
        with contextlib.suppress(OSError):
            os.close(self.write_fd)
        self._thread.join(1.0)
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
