"""Per-process (per-worker) state: memory maps, heartbeat lease, rate limiter.

None of this is shared between workers, and nothing here is created before the
fork: :class:`~reference_impl.service.ScanService` builds it on first use.

>>> memory = Memory(enabled=True)
>>> memory.register("scan_1", "alice", "alice:00")
>>> memory.lookup("scan_1")
'alice:00'
>>> Memory(enabled=False).lookup("scan_1") is None
True
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import Callable

from reference_impl.clock import SYSTEM_CLOCK, Clock
from reference_impl.payload import StoredEntry
from reference_impl.redis_manager import RedisManager, StoreUnavailable
from reference_impl.store import Store, StoreError, worker_lease_key

_log = logging.getLogger("reference_impl.worker")


class Memory:
    """The real service's per-worker maps: result cache, ``_scan_lookup``, latest scan.

    Consulted before Redis and never invalidated by other workers' writes (F8).
    Disabled, every method is a no-op and every lookup misses.
    """

    def __init__(self, *, enabled: bool, clock: Clock = SYSTEM_CLOCK) -> None:
        self.enabled = enabled
        self._clock = clock
        self._results: dict[str, tuple[StoredEntry, float]] = {}
        self._scan_lookup: dict[str, str] = {}
        self._user_latest: dict[str, str] = {}

    def get_result(self, slot: str) -> StoredEntry | None:
        hit = self._results.get(slot)
        if hit is None:
            return None
        entry, expires_at = hit
        if self._clock.monotonic() >= expires_at:
            del self._results[slot]
            return None
        return entry

    def put_result(self, slot: str, entry: StoredEntry, ttl_s: float) -> None:
        if self.enabled:
            self._results[slot] = (entry, self._clock.monotonic() + ttl_s)

    def lookup(self, scan_id: str) -> str | None:
        return self._scan_lookup.get(scan_id)

    def register(self, scan_id: str, user_id: str, slot: str) -> None:
        if self.enabled:
            self._scan_lookup[scan_id] = slot
            self._user_latest[user_id] = slot


class RateLimiter:
    """At most ``per_minute`` starts per user per worker in any 60 s (real time)."""

    def __init__(self, per_minute: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._starts: dict[str, collections.deque[float]] = {}

    def allow(self, user_id: str) -> bool:
        now = self._clock.monotonic()
        starts = self._starts.setdefault(user_id, collections.deque())
        while starts and now - starts[0] >= 60.0:
            starts.popleft()
        if len(starts) >= self._per_minute:
            return False
        starts.append(now)
        return True


class Liveness:
    """Sound's heartbeat: one lease per worker incarnation, refreshed every lease/3.

    A scan's state names its writer's ``worker_id`` and incarnation (``token``);
    a reader that finds the lease gone or held by another token knows the scan
    is abandoned. If this worker finds its own lease lapsed (Redis outage or
    eviction longer than a lease), readers may already have reported its scans
    failed, so it abandons them (``on_lapse``) and takes a *new* token: a
    refresh only extends a lease that still exists (``SET XX``), so the old
    token is never resurrected and a scan once read as failed stays failed.
    """

    def __init__(
        self,
        *,
        worker_id: str,
        incarnation: str,
        lease_s: float,
        manager: RedisManager,
        store: Store,
        on_lapse: Callable[[], None],
    ) -> None:
        self.worker_id = worker_id
        self.token = incarnation  # the current incarnation; a lapse replaces it
        self._established = False
        self.lease_ms = max(1, round(lease_s * 1000))
        self._interval_s = lease_s / 3
        self._manager = manager
        self._store = store
        self._on_lapse = on_lapse
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def key(self) -> str:
        return worker_lease_key(self.worker_id)

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._beat_forever())

    async def _beat_forever(self) -> None:
        while not self._stop.is_set():
            try:
                async with asyncio.timeout(self._interval_s):
                    await self._stop.wait()
                return
            except TimeoutError:
                pass
            try:
                await self.beat()
            except (StoreError, StoreUnavailable) as exc:
                _log.warning("heartbeat skipped: %s", exc)

    async def establish(self) -> None:
        """Take the lease before this incarnation's first scan is written."""
        if not self._established:
            await self.beat()

    async def beat(self) -> None:
        """Refresh the lease; on a lapse, abandon running scans and take a new token."""
        client = await self._manager.get_client()
        if client is None:
            return  # F2 hands out no client while unhealthy; the writes are skipped too
        if self._established:
            old = await self._store.get_and_refresh(client, self.key, self.token, self.lease_ms)
            if old == self.token:
                return
            _log.warning("worker lease %s had lapsed; abandoning running scans", self.key)
            self.token = uuid.uuid4().hex
            self._on_lapse()
        await self._store.set_value(client, self.key, self.token, self.lease_ms)
        self._established = True

    async def stop(self) -> None:
        # A stop flag as well as cancel(): on Python 3.11 a cancel that lands while
        # a Redis client is inside asyncio.wait_for can be swallowed.
        self._stop.set()
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None


async def stop_tasks(tasks: list[asyncio.Task[None]], attempts: int = 5) -> None:
    """Cancel ``tasks`` and wait for them, re-cancelling any that swallowed a cancel."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
    if pending:
        _log.warning("%d task(s) ignored cancellation", len(pending))
