"""The nemesis: injects the planned faults, proves each one landed, records it.

Every fault becomes one row in the history's faults table with ``landed`` and
its ``evidence`` ("pid 101 -> 202", "7 of 12 lookup keys gone"). Faults that
destroy data a correct service may lose (deleted or expired keys, a flush, a
Redis restart, eviction) are marked ``destructive`` with the scans and tenants
they touched, so checkers can excuse what they caused. Every schedule ends
with :meth:`Nemesis.heal`.

Blocking cluster calls run in a thread so the clients' event loop keeps going.

.. code-block:: python

    nemesis = Nemesis(cluster, writer, contract=Contract(), time_scale=0.01, seed=1)
    await nemesis.apply(planned_fault)
    await nemesis.heal()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import redis

from harness.contract import Contract
from harness.errors import InfrastructureError, UsageError
from harness.history import FaultRecord, HistoryWriter
from harness.plan import PlannedFault
from harness.redis_backends import Fault, RedisBackend
from harness.supervisor import WorkerInfo

# What each planned fault needs from the Redis backend.
_NEEDS: dict[str, Fault] = {
    "delete_keys": Fault.DELETE,
    "expire_keys": Fault.EXPIRE,
    "evict": Fault.EVICTION,
    "flush": Fault.FLUSH,
    "redis_restart": Fault.RESTART,
    "redis_stall": Fault.STALL,
    "redis_pause": Fault.PAUSE,
}


class Target(Protocol):
    """What the nemesis needs of a cluster (``harness.cluster.Cluster`` provides it)."""

    @property
    def redis(self) -> RedisBackend: ...

    @property
    def workers(self) -> tuple[WorkerInfo, ...]: ...

    def kill(self, index: int) -> None: ...

    def restart(self, index: int) -> float: ...

    def pause(self, index: int) -> None: ...

    def resume(self, index: int) -> None: ...

    def deploy(self, *, rolling: bool = True) -> tuple[float, ...]: ...


def check_supported(
    faults: Iterable[PlannedFault], backend: RedisBackend, backend_spec: str
) -> None:
    """Refuse, before anything runs, a schedule the Redis backend cannot carry out."""
    for planned in faults:
        need = _NEEDS.get(planned.step.fault)
        if need is not None and need not in backend.supported_faults:
            raise UsageError(
                f"fault {planned.step.fault!r} needs Redis support for {need.value!r}, which "
                f"--redis {backend_spec} ({backend.name}) lacks; use --redis server"
            )


@dataclass
class _KeyParser:
    """Turns a key back into the scan id and tenant it belongs to, from contract patterns."""

    contract: Contract
    _regexes: list[re.Pattern[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for patterns in self.contract.keys.values():
            for pattern in patterns:
                rx = re.escape(pattern)
                rx = rx.replace(re.escape("{scan_id}"), "(?P<scan_id>[^:]+)")
                rx = rx.replace(re.escape("{user_id}"), "(?P<user_id>[^:]+)")
                # a cache key begins with the owner's id: "{user_id}:{filters hash}"
                rx = rx.replace(re.escape("{cache_key}"), "(?P<cache_key>(?P<owner>[^:]+):.*)")
                self._regexes.append(re.compile(f"^{rx}$"))

    def owners(self, keys: Iterable[str], values: dict[str, str]) -> tuple[set[str], set[str]]:
        scans: set[str] = set()
        tenants: set[str] = set()
        for key in keys:
            for rx in self._regexes:
                m = rx.match(key)
                if m is None:
                    continue
                groups = m.groupdict()
                if groups.get("scan_id"):
                    scans.add(groups["scan_id"])
                for name in ("user_id", "owner"):
                    if groups.get(name):
                        tenants.add(groups[name])
                break
            # lookup-style keys hold a cache key: its owner's data path is gone too
            value = values.get(key, "")
            if ":" in value and len(value) < 200:
                tenants.add(value.split(":", 1)[0])
        return scans, tenants


class Nemesis:
    """Carries out planned faults against a cluster and records them."""

    def __init__(
        self,
        cluster: Target,
        writer: HistoryWriter,
        *,
        contract: Contract,
        time_scale: float,
        seed: int,
    ) -> None:
        self.cluster = cluster
        self.writer = writer
        self.contract = contract
        self.time_scale = time_scale
        self.rng = random.Random(f"nemesis:{seed}")
        self._ids = itertools.count()
        self._keys = _KeyParser(contract)
        self._maxmemory_set = False
        self.active: set[str] = set()  # names of faults in progress (for progress display)
        self.records: list[FaultRecord] = []

    # ------------------------------------------------------------------ helpers
    def _record(
        self,
        fault: str,
        target: str,
        start: int,
        *,
        landed: bool,
        evidence: str,
        params: dict[str, object] | None = None,
        destructive: bool = False,
        scope: str = "listed",
        scans: Iterable[str] = (),
        tenants: Iterable[str] = (),
    ) -> FaultRecord:
        record = FaultRecord(
            fault_id=f"f{next(self._ids)}",
            fault=fault,
            target=target,
            t_start_ns=start,
            t_end_ns=time.monotonic_ns(),
            landed=landed,
            evidence=evidence,
            params=json.dumps(params or {}, sort_keys=True),
            destructive=destructive,
            scope=scope,
            affected_scans=",".join(sorted(scans)),
            affected_tenants=",".join(sorted(tenants)),
        )
        self.writer.fault(record)
        self.records.append(record)
        return record

    def _matching_keys(self, key_class: str) -> list[str]:
        client = self.cluster.redis.client()
        try:
            keys: set[str] = set()
            for glob in self.contract.key_globs(key_class):
                keys.update(_text(k) for k in client.scan_iter(match=glob, count=500))
            return sorted(keys)
        except redis.RedisError as exc:
            raise InfrastructureError(f"SCAN for {key_class} keys failed: {exc}") from exc
        finally:
            client.close()

    def _values(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        client = self.cluster.redis.client()
        try:
            values = client.mget(keys)
        except redis.RedisError:
            return {}  # only used to name owners; not worth failing the fault for
        finally:
            client.close()
        return {k: _text(v) for k, v in zip(keys, values, strict=True) if v}

    def _count_existing(self, keys: list[str]) -> int:
        client = self.cluster.redis.client()
        try:
            return int(client.exists(*keys)) if keys else 0
        except redis.RedisError as exc:
            raise InfrastructureError(f"EXISTS check failed: {exc}") from exc
        finally:
            client.close()

    # ------------------------------------------------------------------- faults
    async def apply(self, planned: PlannedFault) -> FaultRecord:
        """Inject one planned fault; returns its record once it has ended."""
        step = planned.step
        self.active.add(step.fault)
        try:
            return await self._apply(planned)
        finally:
            self.active.discard(step.fault)

    async def _apply(self, planned: PlannedFault) -> FaultRecord:
        step = planned.step
        start = time.monotonic_ns()
        params = {k: v for k, v in asdict(step).items() if k != "at"}
        scaled = step.duration * self.time_scale
        backend = self.cluster.redis
        if step.fault in ("delete_keys", "expire_keys"):
            return await asyncio.to_thread(
                self._lose_keys, step.fault, step.key_class, step.fraction, start, params
            )
        if step.fault == "flush":
            await asyncio.to_thread(backend.flush)
            return self._record(
                "flush",
                "redis",
                start,
                landed=True,
                evidence="dbsize 0 after FLUSHALL",
                params=params,
                destructive=True,
                scope="all",
            )
        if step.fault == "redis_restart":
            seconds = await asyncio.to_thread(backend.restart)
            return self._record(
                "redis_restart",
                "redis",
                start,
                landed=True,
                evidence=f"new process ready in {seconds * 1000:.0f} ms, data lost",
                params=params,
                destructive=True,
                scope="all",
            )
        if step.fault == "evict":
            return await self._evict(step.headroom_kb, step.policy, start, params)
        if step.fault == "redis_stall":
            await asyncio.to_thread(backend.stall)
            await asyncio.sleep(scaled)
            await asyncio.to_thread(backend.unstall)
            return self._record(
                "redis_stall",
                "redis",
                start,
                landed=True,
                evidence=f"SIGSTOP for {scaled:.2f} s, then SIGCONT",
                params=params,
            )
        if step.fault == "redis_pause":
            await asyncio.to_thread(backend.client_pause, scaled)
            await asyncio.sleep(scaled)
            return self._record(
                "redis_pause",
                "redis",
                start,
                landed=True,
                evidence=f"CLIENT PAUSE {scaled:.2f} s",
                params=params,
            )
        if step.fault == "worker_kill":
            return await self._kill(planned.worker, step.down * self.time_scale, start, params)
        if step.fault == "worker_pause":
            index = planned.worker
            pid = self.cluster.workers[index].pid
            await asyncio.to_thread(self.cluster.pause, index)
            await asyncio.sleep(scaled)
            await asyncio.to_thread(self.cluster.resume, index)
            return self._record(
                "worker_pause",
                f"worker:{index}",
                start,
                landed=True,
                evidence=f"pid {pid} SIGSTOP for {scaled:.2f} s",
                params=params,
            )
        if step.fault == "deploy":
            before = [w.pid for w in self.cluster.workers]
            times = await asyncio.to_thread(lambda: self.cluster.deploy(rolling=step.rolling))
            after = [w.pid for w in self.cluster.workers]
            landed = all(a != b for a, b in zip(before, after, strict=True))
            return self._record(
                "deploy",
                "workers",
                start,
                landed=landed,
                evidence=f"pids {before} -> {after}; ready in "
                + ", ".join(f"{t * 1000:.0f}" for t in times)
                + " ms",
                params=params,
            )
        raise UsageError(f"fault {step.fault!r} has no implementation")  # validated earlier

    def _lose_keys(
        self, fault: str, key_class: str, fraction: float, start: int, params: dict[str, object]
    ) -> FaultRecord:
        keys = self._matching_keys(key_class)
        chosen = sorted(self.rng.sample(keys, max(1, round(len(keys) * fraction)))) if keys else []
        values = self._values(chosen)
        backend = self.cluster.redis
        if fault == "delete_keys":
            backend.delete(*chosen)
        else:
            for key in chosen:
                backend.expire(key, 0.001)
        # EXISTS also makes Redis expire a due key, so a zero here is proof.
        deadline = time.monotonic() + 2.0
        left = self._count_existing(chosen)
        while left and time.monotonic() < deadline:
            time.sleep(0.005)
            left = self._count_existing(chosen)
        scans, tenants = self._keys.owners(chosen, values)
        return self._record(
            fault,
            f"{key_class} keys",
            start,
            landed=bool(chosen) and left == 0,
            evidence=f"{len(chosen) - left} of {len(keys)} {key_class} keys gone",
            params=params,
            destructive=bool(chosen),
            scans=scans,
            tenants=tenants,
        )

    async def _evict(
        self, headroom_kb: int, policy: str, start: int, params: dict[str, object]
    ) -> FaultRecord:
        backend = self.cluster.redis

        def squeeze() -> int:
            limit = backend.maxmemory_for(headroom_kb * 1024)
            backend.set_maxmemory(limit, policy)
            self._maxmemory_set = True
            return limit

        limit = await asyncio.to_thread(squeeze)
        # Eviction (or, under noeviction, OOM errors on writes) happens as workers
        # write; the heal lifts the limit and counts evictions.
        evicts = policy != "noeviction"
        effect = "keys evicted as workers write" if evicts else "writes fail with OOM"
        return self._record(
            "evict",
            "redis",
            start,
            landed=True,
            evidence=f"maxmemory {limit} bytes, {policy}: {effect} (lifted at heal)",
            params=params,
            destructive=evicts,
            scope="all",
        )

    async def _kill(
        self, index: int, down_s: float, start: int, params: dict[str, object]
    ) -> FaultRecord:
        old = self.cluster.workers[index].pid
        await asyncio.to_thread(self.cluster.kill, index)
        await asyncio.sleep(down_s)
        seconds = await asyncio.to_thread(self.cluster.restart, index)
        new = self.cluster.workers[index].pid
        return self._record(
            "worker_kill",
            f"worker:{index}",
            start,
            landed=new != old,
            evidence=f"SIGKILL pid {old}; down {down_s:.2f} s; pid {new} ready in "
            f"{seconds * 1000:.0f} ms",
            params=params,
        )

    async def heal(self) -> FaultRecord:
        """End every fault: Redis running, limits lifted, every worker alive and running."""
        start = time.monotonic_ns()
        backend = self.cluster.redis
        notes: list[str] = []
        if Fault.STALL in backend.supported_faults:
            await asyncio.to_thread(backend.unstall)
        if self._maxmemory_set:
            evicted = await asyncio.to_thread(_evicted_keys, backend)
            await asyncio.to_thread(backend.set_maxmemory, 0, "noeviction")
            notes.append(f"maxmemory lifted ({evicted} keys evicted)")
            self._maxmemory_set = False
        for worker in self.cluster.workers:
            if not worker.alive:
                await asyncio.to_thread(self.cluster.restart, worker.index)
                notes.append(f"worker {worker.index} restarted")
            elif worker.stopped:
                await asyncio.to_thread(self.cluster.resume, worker.index)
                notes.append(f"worker {worker.index} resumed")
        healthy = all(w.alive and not w.stopped for w in self.cluster.workers)
        return self._record(
            "heal",
            "cluster",
            start,
            landed=healthy and await asyncio.to_thread(backend.ping),
            evidence="; ".join(notes) or "nothing to heal",
        )


def _evicted_keys(backend: RedisBackend) -> int:
    client = backend.client()
    try:
        return int(client.info("stats").get("evicted_keys", 0))
    except redis.RedisError:
        return -1
    finally:
        client.close()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
