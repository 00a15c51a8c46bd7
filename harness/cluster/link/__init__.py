"""Per-worker links to Redis: one small proxy per worker, so one link can be cut or slowed.

:class:`Links` (the parent-side handle) starts ``_main`` as a child process whose
asyncio protocols forward each worker's Redis connections untouched on a healthy
link, and carry out link faults (latency, reset, blackhole, partition) on command.
"""

from __future__ import annotations

from harness.cluster.link._control import Links, LinkStats

__all__ = ["LinkStats", "Links"]
