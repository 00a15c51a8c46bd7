"""Cluster events: every fault the cluster injects, reported to an ``on_event`` hook.

The chaos runner records these next to client operations; a hook that raises
is logged and ignored, never fatal to the fault it reports.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_log = logging.getLogger("scanproof.cluster")


class EventKind(enum.Enum):
    """What happened to the cluster."""

    WORKER_KILLED = "worker_killed"
    WORKER_PAUSED = "worker_paused"
    WORKER_RESUMED = "worker_resumed"
    WORKER_RESTARTED = "worker_restarted"
    DEPLOY_STARTED = "deploy_started"
    DEPLOY_FINISHED = "deploy_finished"
    REDIS_RESTARTED = "redis_restarted"
    REDIS_PAUSED = "redis_paused"
    REDIS_STALLED = "redis_stalled"
    REDIS_UNSTALLED = "redis_unstalled"
    REDIS_MAXMEMORY = "redis_maxmemory"
    REDIS_FLUSHED = "redis_flushed"
    REDIS_EXPIRED = "redis_expired"
    REDIS_DELETED = "redis_deleted"


@dataclass(frozen=True)
class ClusterEvent:
    """One fault, after it landed.

    ``worker`` is the worker index (None for Redis and whole-cluster events);
    ``duration`` is how long the operation took in seconds (restart to ready,
    for restarts); ``at`` is wall-clock time, ``monotonic`` the monotonic clock,
    both taken when the event was reported.
    """

    kind: EventKind
    worker: int | None = None
    duration: float | None = None
    detail: str = ""
    at: float = field(default_factory=time.time)
    monotonic: float = field(default_factory=time.monotonic)


EventHook = Callable[[ClusterEvent], None]


def emit(hook: EventHook | None, event: ClusterEvent) -> None:
    """Deliver ``event`` to ``hook``; a failing hook is logged, not raised."""
    if hook is None:
        return
    try:
        hook(event)
    except Exception:
        _log.exception("on_event hook failed for %s", event.kind.value)
