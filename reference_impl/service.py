"""The per-process scan service: lifecycle of a scan and every flag's decision point.

One :class:`ScanService` per worker process, built lazily after the fork. The
read algorithms (status, results) live in :mod:`reference_impl.reads`; every
method here whose name appears in a flag's ``site`` metadata is the only place
that flag is read.

>>> import asyncio, fakeredis
>>> from reference_impl.flags import PRESETS
>>> from reference_impl.timing import Timing
>>> server = fakeredis.FakeServer()
>>> def factory(**kw):
...     return fakeredis.FakeAsyncRedis(server=server, decode_responses=True, **kw)
>>> svc = ScanService(flags=PRESETS["sound"], timing=Timing(time_scale=0.001), worker_id="w1",
...     redis_factory=factory)
>>> async def demo() -> str:
...     started = await svc.discover("alice", DiscoverRequest())
...     await svc.shutdown()
...     return started.body["status"]
>>> asyncio.run(demo())
'initiated'
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis

from reference_impl import reads
from reference_impl.flags import Flags
from reference_impl.payload import Opportunity, ScanPayload, StoredEntry
from reference_impl.reads import Reply
from reference_impl.redis_manager import (
    RETRY_POLICIES,
    RedisFactory,
    RedisManager,
    RetryPolicy,
    StoreUnavailable,
)
from reference_impl.store import (
    Fence,
    FenceLost,
    Store,
    StoreError,
    Write,
    active_key,
    lookup_key,
    result_index_key,
    result_key,
    user_latest_key,
    worker_lease_key,
)
from reference_impl.timing import (
    BREAKER_OPEN_S,
    FORCE_REFRESH_REWRITE_AT_S,
    FRESH_RESULT_S,
    HEALTH_CHECK_INTERVAL_S,
    LOOKUP_TTL_FIXED_S,
    LOOKUP_TTL_S,
    PARTIAL_TTL_S,
    PREAMBLE_STEPS_S,
    RATE_LIMIT_PER_MINUTE,
    RESULT_TTL_S,
    SCAN_TTL_S,
    SOUND_RETENTION_S,
    STRATEGY_NAMES,
    STRATEGY_SETUP_DONE_AT_S,
    Timing,
)
from reference_impl.worker_state import Liveness, Memory, RateLimiter, stop_tasks

_log = logging.getLogger("reference_impl.service")


@dataclass(frozen=True, kw_only=True)
class DiscoverRequest:
    """The body of ``POST /discover``; ``strategies``/``fail_strategy`` drive the simulation."""

    filters: Mapping[str, Any] = field(default_factory=dict)
    force_refresh: bool = False
    strategies: int = 14
    fail_strategy: int | None = None


@dataclass(frozen=True, kw_only=True)
class _Scan:
    scan_id: str
    user_id: str
    cache_key: str
    digest: str
    slot: str
    strategies: int
    fail_strategy: int | None
    force_refresh: bool
    fresh: StoredEntry | None
    started_at: float
    owner: str  # the incarnation token the scan started under; it never changes


class ScanAbandoned(Exception):
    """Sound: a scan outlived its incarnation's lease and must not write again."""


@dataclass(frozen=True, kw_only=True)
class ResolutionPolicy:
    """How long the keys that resolve a scan_id live, and whether result writes renew them."""

    ttl_ms: int
    rewrite_on_result_write: bool


def resolution_policy(flags: Flags, timing: Timing) -> ResolutionPolicy:
    """F4's decision point (patched by the TTL +300 and triple-persistence fixes)."""
    if flags.lookup_written_once_short_ttl:
        ttl = LOOKUP_TTL_FIXED_S if flags.fix_lookup_ttl_plus_300 else LOOKUP_TTL_S
        return ResolutionPolicy(
            ttl_ms=timing.ms(ttl), rewrite_on_result_write=flags.fix_triple_persistence
        )
    return ResolutionPolicy(ttl_ms=timing.ms(SOUND_RETENTION_S), rewrite_on_result_write=True)


def retry_policy(flags: Flags) -> RetryPolicy:
    """The Redis client's retry policy and timeouts chosen by the flags."""
    return RETRY_POLICIES[flags.retry_policy]


@dataclass
class _Running:
    scan_id: str
    task: asyncio.Task[None]


class ScanService:
    """One worker's scan service. Public: discover, status, results, shutdown."""

    def __init__(
        self, *, flags: Flags, timing: Timing, worker_id: str, redis_factory: RedisFactory
    ) -> None:
        self.flags = flags
        self.timing = timing
        self.worker_id = worker_id
        self._incarnation = uuid.uuid4().hex
        self.manager = RedisManager(
            factory=redis_factory,
            policy=retry_policy(flags),
            health_interval_s=timing.s(HEALTH_CHECK_INTERVAL_S),
            breaker_open_s=timing.s(BREAKER_OPEN_S),
            none_when_unhealthy=flags.unhealthy_client_is_none,
            clock=timing.clock,
        )
        self.store = Store(manager=self.manager, atomic=not flags.write_group_aborts_on_error)
        self.memory = Memory(enabled=flags.per_worker_read_through_cache, clock=timing.clock)
        self.liveness: Liveness | None = None
        if not flags.no_scan_liveness:
            self.liveness = Liveness(
                worker_id=worker_id,
                incarnation=self._incarnation,
                lease_s=timing.worker_lease_s,
                manager=self.manager,
                store=self.store,
                on_lapse=self._abandon_running,
            )
        self._redis: aioredis.Redis | None = None  # the real service's client attribute
        self._tasks: dict[str, _Running] = {}
        self._rate = RateLimiter(RATE_LIMIT_PER_MINUTE, clock=timing.clock)
        self._killed = False

    @property
    def incarnation(self) -> str:
        """The owner token this worker writes into scan state now (sound: the lease's)."""
        return self.liveness.token if self.liveness is not None else self._incarnation

    # ---- clients -------------------------------------------------------------

    async def _write_client(self) -> aioredis.Redis | None:
        """Start endpoint and scan task: (re)initialise the client attribute."""
        if self._killed:
            return None  # a killed process writes nothing
        self._redis = await self.manager.get_client()
        return self._redis

    async def read_client(self) -> aioredis.Redis | None:
        """Status and results: F1 keeps the attribute as is (None until a /discover here)."""
        if self.flags.client_init_on_discover_only and not self.flags.fix_read_path_client_reinit:
            return self._redis
        return await self._write_client()

    # ---- keys and TTLs, one flag each -----------------------------------------

    def _slot(self, cache_key: str, scan_id: str) -> str:
        if self.flags.one_result_slot_per_filters:
            return cache_key
        return f"{cache_key}:{scan_id}"

    def _active_key(self, slot: str) -> str:
        if self.flags.active_flag_per_cache_key:
            return active_key(":".join(slot.split(":")[:2]))
        return active_key(slot)

    def resolution_keys(self, scan_id: str) -> list[str]:
        if self.flags.fix_result_index_fallback:
            return [lookup_key(scan_id), result_index_key(scan_id)]
        return [lookup_key(scan_id)]

    def _resolution_policy(self) -> ResolutionPolicy:
        return resolution_policy(self.flags, self.timing)

    def _complete_ttl_ms(self) -> int:
        if self.flags.result_expires_before_lookups:
            return self.timing.ms(RESULT_TTL_S)
        return self.timing.ms(SOUND_RETENTION_S)

    def _owner_check_applies(self, path: str) -> bool:
        """Whether a slot found via ``path`` (memory, lookup, index) is owner-checked."""
        if path == "lookup":
            return (
                not self.flags.redis_lookup_without_owner_check
                or self.flags.fix_ownership_validation
            )
        return not self.flags.memory_and_fallback_without_owner_check

    def owns(self, user_id: str, slot: str, path: str) -> bool:
        return not self._owner_check_applies(path) or slot.startswith(f"{user_id}:")

    # ---- writes ----------------------------------------------------------------

    def _placeholder(self, scan: _Scan) -> ScanPayload:
        total = 0 if self.flags.placeholder_zero_total else scan.strategies
        return self._payload(scan, status="scanning", completed=0, total=total)

    def _payload(self, scan: _Scan, **kw: Any) -> ScanPayload:
        return ScanPayload(
            scan_id=scan.scan_id,
            user_id=scan.user_id,
            cache_key=scan.cache_key,
            slot=scan.slot,
            status=kw["status"],
            strategies_completed=kw["completed"],
            total_strategies=kw["total"],
            opportunities=tuple(kw.get("opportunities", ())),
            error=kw.get("error"),
            worker_id=self.worker_id,
            owner=scan.owner,
            started_at=scan.started_at,
            completed_at=kw.get("completed_at"),
        )

    def _resolution_writes(self, scan: _Scan, ttl_ms: int) -> list[Write]:
        keys = [*self.resolution_keys(scan.scan_id), user_latest_key(scan.user_id)]
        return [Write(key=k, value=scan.slot, ttl_ms=ttl_ms) for k in keys]

    async def _write_entry(self, scan: _Scan, payload: ScanPayload, *, start: bool = False) -> None:
        """Memory first, then Redis: [lookups] at start, then [result, (lookups), active]."""
        if payload.status != "failed" and scan.owner != self.incarnation:
            # Sound: the lease lapsed after this scan started and readers may have said
            # failed; a scan never comes back from failed, so it stops here.
            raise ScanAbandoned(f"scan {scan.scan_id}: its worker's lease lapsed")
        partial = payload.status == "scanning"
        ttl_ms = self.timing.ms(PARTIAL_TTL_S) if partial else self._complete_ttl_ms()
        entry = StoredEntry(payload=payload, partial=partial, cached_at=self.timing.clock.wall())
        self.memory.put_result(scan.slot, entry, ttl_ms / 1000)
        policy = self._resolution_policy()
        groups: list[list[Write]] = []
        result_group = [Write(key=result_key(scan.slot), value=entry.to_json(), ttl_ms=ttl_ms)]
        if start:
            self.memory.register(scan.scan_id, scan.user_id, scan.slot)
            groups.append(self._resolution_writes(scan, policy.ttl_ms))
        elif policy.rewrite_on_result_write:
            result_group.extend(self._resolution_writes(scan, policy.ttl_ms))
        result_group.append(
            Write(
                key=self._active_key(scan.slot),
                value=scan.scan_id,
                ttl_ms=self.timing.ms(SCAN_TTL_S),
            )
        )
        groups.append(result_group)
        try:
            await self.store.write(
                await self._write_client(),
                groups,
                fence=None if start else self._fence(scan, payload),
            )
        except FenceLost as exc:
            # The lease expired before this worker's heartbeat noticed: readers may
            # already have said failed, so this scan writes nothing more but failed.
            raise ScanAbandoned(f"scan {scan.scan_id}: its worker's lease lapsed") from exc

    def _fence(self, scan: _Scan, payload: ScanPayload) -> Fence | None:
        """Sound: a write that could contradict "failed" lands only while the lease holds.

        A failed payload never contradicts a reader. The start write is not fenced: if
        the lease is already gone, readers say failed from the first poll and every
        later write of the scan is stopped here.
        """
        if self.liveness is None or payload.status == "failed":
            return None
        return Fence(key=self.liveness.key, token=scan.owner)

    # ---- start -----------------------------------------------------------------

    async def discover(self, user_id: str, request: DiscoverRequest) -> Reply:
        """Start a scan (or join this worker's in-flight one for the same slot)."""
        if not self._rate.allow(user_id):
            return Reply(
                status_code=429,
                body={"success": False, "error": "rate limited: 30 scans per minute"},
            )
        client = await self._write_client()
        normalised = json.dumps(request.filters, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha1(normalised.encode()).hexdigest()[:16]
        cache_key = f"{user_id}:{digest}"
        scan_id = f"scan_{uuid.uuid4().hex}"
        slot = self._slot(cache_key, scan_id)
        running = self._tasks.get(slot)
        if running is not None and not running.task.done():
            return Reply(
                status_code=200,
                body={"success": True, "scan_id": running.scan_id, "status": "initiated"},
            )
        fresh = None
        if not request.force_refresh:
            previous = await reads.peek(self, slot, client)
            if (
                previous is not None
                and not previous.partial
                and previous.payload.status == "complete"
                and self.timing.clock.wall() - previous.cached_at < self.timing.s(FRESH_RESULT_S)
            ):
                fresh = previous
        if self.liveness is not None:
            await self.liveness.establish()  # the lease exists before the scan's state
            self.liveness.ensure_running()
        scan = _Scan(
            scan_id=scan_id,
            user_id=user_id,
            cache_key=cache_key,
            digest=digest,
            slot=slot,
            strategies=request.strategies,
            fail_strategy=request.fail_strategy,
            force_refresh=request.force_refresh,
            fresh=fresh,
            started_at=self.timing.clock.wall(),
            owner=self.incarnation,
        )
        await self._write_entry(scan, self._placeholder(scan), start=True)
        self._tasks[slot] = _Running(
            scan_id=scan_id, task=asyncio.create_task(self._run_scan(scan))
        )
        return Reply(
            status_code=200, body={"success": True, "scan_id": scan_id, "status": "initiated"}
        )

    # ---- the background task ---------------------------------------------------

    async def _run_scan(self, scan: _Scan) -> None:
        try:
            await self._scan_body(scan)
        except asyncio.CancelledError:
            await self._early_exit(scan, "cancelled")
            raise
        except Exception as exc:  # the real task catches everything and returns an error payload
            _log.warning("scan %s failed: %r", scan.scan_id, exc)
            await self._early_exit(scan, f"error: {exc!r}")
        finally:
            await self._quiet_write([[Write(key=self._active_key(scan.slot), value=None)]])
            running = self._tasks.get(scan.slot)
            if running is not None and running.scan_id == scan.scan_id:
                del self._tasks[scan.slot]

    async def _scan_body(self, scan: _Scan) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if scan.fresh is not None:
            await self._early_exit(scan, "fresh_cache")
            return
        if scan.strategies == 0:
            # known up front in this model, so sound's 0/0 window is as short as possible
            await self._early_exit(scan, "no active strategies")
            return
        for _, seconds in PREAMBLE_STEPS_S:
            await asyncio.sleep(self.timing.s(seconds))
        await self._write_entry(
            scan, self._payload(scan, status="scanning", completed=0, total=scan.strategies)
        )
        if scan.force_refresh:
            await asyncio.sleep(
                max(0.0, t0 + self.timing.s(FORCE_REFRESH_REWRITE_AT_S) - loop.time())
            )
            await self._write_entry(scan, self._placeholder(scan))
        await asyncio.sleep(max(0.0, t0 + self.timing.s(STRATEGY_SETUP_DONE_AT_S) - loop.time()))
        # The budget bounds the strategies' own work, not the snapshot writes queued behind
        # them: at small time scales 14 writes could otherwise eat the whole margin.
        found = await self._run_strategies(scan, self.timing.scan_budget_s)
        final = self._payload(
            scan, status="complete", completed=scan.strategies, total=scan.strategies,
            opportunities=found, completed_at=self.timing.clock.wall(),
        )  # fmt: skip
        await self._write_entry(scan, final)

    async def _strategy(
        self, scan: _Scan, index: int, runtime_s: float, budget_s: float
    ) -> list[Opportunity]:
        # Whether a strategy overruns its budget is decided by the model's numbers, not by
        # the event loop's punctuality: with a deadline timer racing the sleep, a loop stalled
        # past both (a loaded CI machine, a GC pause) cancelled a strategy that had finished.
        if runtime_s > budget_s:
            await asyncio.sleep(budget_s)
            raise TimeoutError(f"strategy {index} overran its {budget_s:.3f} s budget")
        await asyncio.sleep(runtime_s)
        if index == scan.fail_strategy:
            raise RuntimeError(f"strategy {index} raised")
        name = STRATEGY_NAMES[index % len(STRATEGY_NAMES)]
        return [
            Opportunity(
                id=f"{scan.scan_id}:{index}:{j}",
                strategy=name,
                symbol=symbol,
                score=score,
                user_id=scan.user_id,
                scan_id=scan.scan_id,
            )
            for j, (symbol, score) in enumerate(
                self.timing.opportunities(scan.user_id, scan.digest, index)
            )
        ]

    async def _run_strategies(self, scan: _Scan, budget_s: float) -> list[Opportunity]:
        runtimes = self.timing.strategy_runtimes_s(scan.user_id, scan.digest, scan.strategies)
        found: list[Opportunity] = []
        if self.flags.snapshots_after_all_strategies:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._strategy(scan, i, r, budget_s))
                    for i, r in enumerate(runtimes)
                ]
            for done, task in enumerate(tasks, start=1):
                found.extend(task.result())
                await self._write_snapshot(scan, done, found)
            return found
        lock = asyncio.Lock()  # snapshots land in completion order, never regress
        completed = 0

        async def tracked(index: int, runtime_s: float) -> None:
            nonlocal completed
            opps = await self._strategy(scan, index, runtime_s, budget_s)
            async with lock:
                completed += 1
                found.extend(opps)
                await self._write_snapshot(scan, completed, found)

        async with asyncio.TaskGroup() as group:
            for i, r in enumerate(runtimes):
                group.create_task(tracked(i, r))
        return found

    async def _write_snapshot(self, scan: _Scan, done: int, found: list[Opportunity]) -> None:
        payload = self._payload(
            scan, status="scanning", completed=done, total=scan.strategies, opportunities=found
        )
        await self._write_entry(scan, payload)

    async def _early_exit(self, scan: _Scan, reason: str) -> None:
        """Exception, cancellation, no strategies, fresh cache: F10 writes nothing."""
        if self.flags.early_exit_without_terminal_state:
            return
        if reason == "fresh_cache" and scan.fresh is not None:
            payload = replace(
                scan.fresh.payload.restamped(scan_id=scan.scan_id, slot=scan.slot),
                owner=scan.owner,
            )
        else:
            payload = self._payload(
                scan,
                status="failed",
                completed=0,
                total=scan.strategies,
                error=reason,
                completed_at=self.timing.clock.wall(),
            )
        try:
            await self._write_entry(scan, payload)
        except (StoreError, StoreUnavailable) as exc:
            _log.warning("could not record the end of scan %s: %s", scan.scan_id, exc)

    async def _quiet_write(self, groups: list[list[Write]]) -> None:
        try:
            await self.store.write(await self._write_client(), groups)
        except (StoreError, StoreUnavailable) as exc:
            _log.warning("cleanup write failed: %s", exc)

    # ---- reads (algorithms in reads.py) ----------------------------------------

    async def status(self, user_id: str, scan_id: str) -> Reply:
        return await reads.status(self, user_id, scan_id)

    async def results(self, user_id: str, scan_id: str) -> Reply:
        return await reads.results(self, user_id, scan_id)

    def has_local_task(self, slot: str) -> bool:
        running = self._tasks.get(slot)
        return running is not None and not running.task.done()

    async def is_active(self, slot: str, client: aioredis.Redis | None) -> bool:
        flag = await self.store.get(client, self._active_key(slot))
        return flag is not None or self.has_local_task(slot)

    async def settle_partial(
        self, slot: str, entry: StoredEntry, client: aioredis.Redis | None
    ) -> StoredEntry | None:
        """Sound's liveness check (F11 off) of a partial entry: None if its scan is abandoned.

        The slot's entry and its writer's lease are read again in one MGET: a lease
        that lapsed after the scan's last write says nothing about a scan that had
        already finished, so a fresher terminal entry is returned instead. A partial
        entry whose lease is gone at that instant is final: writes are fenced on it.
        """
        if self.liveness is None:
            return entry
        # No shortcut for this worker's own scans: until its heartbeat notices a lapse
        # it would say scanning while every other worker already says failed.
        payload = entry.payload
        text, lease = await self.store.read_chain(
            client, [result_key(slot), worker_lease_key(payload.worker_id)]
        )
        fresh = StoredEntry.from_json(text) if text is not None else None
        same_scan = fresh is not None and fresh.payload.scan_id == payload.scan_id
        if lease == payload.owner:
            return entry  # live: answer from what was read (F8's stale memory included)
        if fresh is not None and same_scan and not fresh.partial:
            return fresh
        return None

    # ---- end of life -----------------------------------------------------------

    def _abandon_running(self) -> None:
        for running in list(self._tasks.values()):
            running.task.cancel()

    async def shutdown(self) -> None:
        """Cancel running scans (a deploy or recycle) and close the client."""
        await stop_tasks([r.task for r in self._tasks.values()])
        if self.liveness is not None:
            await self.liveness.stop()
        await self.manager.aclose()

    async def simulate_kill(self) -> None:
        """In-process stand-in for SIGKILL: tasks stop and nothing more is written."""
        self._killed = True
        await self.shutdown()
