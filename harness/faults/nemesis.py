"""The nemesis: injects the planned faults, proves each one landed, records it.

Every fault becomes one row in the history's faults table with ``landed`` and
its ``evidence`` ("pid 101 -> 202", "7 of 12 lookup keys gone"). Faults that
destroy data a correct service may lose (deleted or expired keys, a flush, a
Redis restart, eviction) are marked ``destructive``: a flush, a restart and an
eviction with ``scope="all"``; lost keys with the scans and tenants their names
declare (:mod:`harness.faults.attribution`, from the contract's key patterns, no
value read). The checkers excuse what they caused to those scans only (a tenant
listed there is information, never an excuse). Kills, pauses and stalls destroy
nothing: they are recorded with their time window. Link faults (``link_*``) act on
some workers' own links to Redis (:class:`harness.cluster.link.Links`; the
cluster must be started with ``links=True``) and destroy nothing either: an
anomaly during one is never excused, a correct service answers an error, not
``not_found``. Job worker faults (``job_worker_*``, target ``job:<i>``) act on the
cluster's job workers (:mod:`harness.faults.jobs`); queue faults (``drop_queued``,
``drop_inflight``) drop the contract's queue keys and list exactly the scans whose
messages they removed (:mod:`harness.faults.queues`). Every schedule ends with
:meth:`Nemesis.heal`, which heals every link and job worker too.

Blocking cluster calls run in a thread so the clients' event loop keeps going.

.. code-block:: python

    nemesis = Nemesis(cluster, writer, contract=Contract(), time_scale=0.01, seed=1)
    await nemesis.apply(planned_fault)
    await nemesis.heal()
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import redis

from harness.cluster.deployment import Deployment
from harness.cluster.link import Links
from harness.cluster.redis import (
    ExternalRedis,
    Fault,
    RedisBackend,
    make_client,
    opt_in_refusal,
    spec_backend,
)
from harness.cluster.supervisor import WorkerInfo
from harness.errors import InfrastructureError, UsageError
from harness.faults.attribution import KeyAttribution
from harness.faults.hooks import NEEDED, HookResult
from harness.faults.jobs import (
    apply_job_fault,
    heal_job_workers,
    job_target,
    job_workers_healthy,
    job_workers_of,
    pick,
)
from harness.faults.queues import IssuedScans, bind_run, drop, glob_of, mentioned
from harness.history.tables import FaultRecord, HistoryWriter
from harness.run.plan import PlannedFault
from harness.run.scenario import JOB_FAULTS, LINK_FAULTS, QUEUE_FAULTS, FaultStep
from harness.targets.contract import Contract

# What each planned fault needs from the Redis backend.
_NEEDS: dict[str, Fault] = {
    "delete_keys": Fault.DELETE,
    "expire_keys": Fault.EXPIRE,
    "evict": Fault.EVICTION,
    "flush": Fault.FLUSH,
    "redis_restart": Fault.RESTART,
    "redis_stall": Fault.STALL,
    "redis_pause": Fault.PAUSE,
    "drop_queued": Fault.DELETE,
    "drop_inflight": Fault.DELETE,
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


def _refusal(
    step: FaultStep,
    backend: type[RedisBackend],
    spec: str,
    *,
    allow_destructive: bool,
    allow_remote_faults: bool,
) -> str | None:
    """Why ``step`` cannot run on this Redis (the fix included), or None when it can."""
    need = _NEEDS.get(step.fault)
    if need is None:
        return None
    if need not in backend.supported_faults:
        if issubclass(backend, ExternalRedis):  # a URL: not ours to restart or stop
            return (
                f"fault {step.fault!r} needs Redis support for {need.value!r}, which only a "
                f"Redis scanproof starts has (--redis server), not --redis {spec}; remove "
                "the fault from the scenario"
            )
        return (
            f"fault {step.fault!r} needs Redis support for {need.value!r}, which "
            f"--redis {spec} ({backend.name}) lacks; use --redis server"
        )
    if issubclass(backend, ExternalRedis):
        why = opt_in_refusal(
            spec,
            need,
            allow_destructive=allow_destructive,
            allow_remote_faults=allow_remote_faults,
        )
        if why is not None:
            return f"fault {step.fault!r} at {step.at:g} of the active phase: {why}"
    return None


def check_schedule(
    steps: Iterable[FaultStep],
    redis_spec: str,
    *,
    allow_destructive: bool = False,
    allow_remote_faults: bool = False,
) -> None:
    """Refuse, before any process starts, a fault schedule the ``--redis`` spec cannot
    carry out or that needs an opt-in the user did not give (``--allow-destructive``,
    ``--allow-remote-faults``): one UsageError naming the first such fault.

    >>> check_schedule([FaultStep(at=0.5, fault="flush")], "redis://127.0.0.1:6379/0")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    harness.errors.UsageError: fault 'flush' at 0.5 of the active phase: ... --allow-destructive ...
    """
    backend = spec_backend(redis_spec)
    for step in sorted(steps, key=lambda s: s.at):
        why = _refusal(
            step,
            backend,
            redis_spec,
            allow_destructive=allow_destructive,
            allow_remote_faults=allow_remote_faults,
        )
        if why is not None:
            raise UsageError(why)


def check_supported(
    faults: Iterable[PlannedFault], backend: RedisBackend, backend_spec: str
) -> None:
    """Refuse, before anything runs, a schedule the Redis backend cannot carry out, or
    (on an external Redis) one that needs an opt-in the backend was not given."""
    for planned in faults:
        why = _refusal(
            planned.step,
            type(backend),
            backend_spec,
            allow_destructive=getattr(backend, "allow_destructive", False),
            allow_remote_faults=getattr(backend, "allow_remote_faults", False),
        )
        if why is not None:
            raise UsageError(why)


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
        run_id: str | None = None,
        issued: IssuedScans | None = None,
    ) -> None:
        """``run_id`` fills ``{run}`` in the contract's queue key patterns; ``issued``
        tells queue faults the scan ids issued so far (default: the history shards
        beside ``writer``'s)."""
        self.cluster = cluster
        self.run_id = run_id
        if run_id:  # {run} in any key pattern is this run's namespace
            contract = dataclasses.replace(
                contract, keys={k: bind_run(v, run_id) for k, v in contract.keys.items()}
            )
        path = getattr(writer, "path", None)
        if issued is None and isinstance(path, Path):
            issued = IssuedScans(path.parent)
        self.issued = issued
        self.writer = writer
        self.contract = contract
        self.time_scale = time_scale
        self.rng = random.Random(f"nemesis:{seed}")
        self._ids = itertools.count()
        self._keys = KeyAttribution(contract)
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
        if step.fault in LINK_FAULTS:
            return await self._link(planned, scaled, start, params)
        if step.fault in JOB_FAULTS:
            jobs = job_workers_of(self.cluster, step.fault)
            index = pick(jobs, step.worker, self.rng)
            landed, evidence = await apply_job_fault(
                jobs, step.fault, index, down_s=step.down * self.time_scale, pause_s=scaled
            )
            return self._record(
                step.fault,
                job_target(index),
                start,
                landed=landed,
                evidence=evidence,
                params={**params, "worker": index},
            )
        if step.fault in QUEUE_FAULTS:
            return await asyncio.to_thread(self._drop, step.fault, start, params)
        if step.fault in NEEDED and isinstance(self.cluster, Deployment):
            return await self._hooked(self.cluster, planned, scaled, start, params)
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
        backend = self.cluster.redis
        # One key at a time, so the record names exactly the keys this fault removed (a
        # key that vanished by itself since the SCAN was not this fault's doing).
        if fault == "delete_keys":
            removed = [key for key in chosen if backend.delete(key)]
        else:
            removed = [key for key in chosen if backend.expire(key, 0.001)]
            # EXISTS also makes Redis expire a due key, so a zero here is proof.
            deadline = time.monotonic() + 2.0
            while self._count_existing(removed) and time.monotonic() < deadline:
                time.sleep(0.005)
        # The service may write a key again right away (a running scan's next snapshot):
        # it was still lost in between, so the fault landed; the evidence says so.
        back = self._count_existing(removed)
        # The scans these keys belong to, by the names the contract declares for this
        # key class; no value is read. Only those scans are excused for what follows.
        owners = self._keys.owners(removed, key_class)
        again = f"; {back} written again since" if back else ""
        return self._record(
            fault,
            f"{key_class} keys",
            start,
            landed=bool(removed),
            evidence=f"{len(removed)} of {len(keys)} {key_class} keys gone{again}",
            params=params,
            destructive=bool(removed),
            scans=owners.scans,
            tenants=owners.tenants,
        )

    def _drop(self, fault: str, start: int, params: dict[str, object]) -> FaultRecord:
        """Drop the contract's queue (or in-flight) keys; the record lists exactly the
        issued scans whose ids the dropped messages carry."""
        key_class = QUEUE_FAULTS[fault]
        patterns = bind_run(self.contract.keys.get(key_class, ()), self.run_id)
        if not patterns:
            raise UsageError(f"fault {fault!r} needs the contract's [keys] {key_class} patterns")
        client = self.cluster.redis.client()
        try:
            dropped = drop(client, [glob_of(p) for p in patterns])
        finally:
            client.close()
        # a create answered while the messages were dropped may not be recorded yet
        if self.issued is None:
            issued: frozenset[str] = frozenset()
        else:
            issued = self.issued.settle(dropped.at_ns)
        scans = mentioned(dropped.messages, issued)
        keys = ", ".join(dropped.keys) or "none"
        return self._record(
            fault,
            f"{key_class} keys",
            start,
            landed=bool(dropped.messages),
            evidence=f"{len(dropped.messages)} messages in {len(dropped.keys)} {key_class} "
            f"keys dropped ({keys}); they name {len(scans)} of {len(issued)} issued scans",
            params={**params, "patterns": list(patterns)},
            destructive=bool(dropped.messages),
            scans=scans,
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

    async def _hooked(
        self,
        deployment: Deployment,
        planned: PlannedFault,
        scaled: float,
        start: int,
        params: dict[str, object],
    ) -> FaultRecord:
        """A process fault on a running deployment: the user's hooks (harness.faults.hooks).

        Landed when every hook exited 0 and, with a probe, a kill/deploy changed its body;
        the evidence carries each hook's exit status and output tail."""
        step = planned.step
        index = planned.worker if step.fault != "deploy" else -1
        probed = step.fault != "worker_pause" and bool(deployment.hooks.probe)
        before = await asyncio.to_thread(deployment.probe) if probed else ""
        results: list[HookResult] = []
        if step.fault == "worker_pause":
            results.append(await asyncio.to_thread(deployment.fire, "worker_pause", index))
            await asyncio.sleep(scaled)
            results.append(await asyncio.to_thread(deployment.fire, "worker_resume", index))
        elif step.fault == "worker_kill":
            results.append(await asyncio.to_thread(deployment.fire, "worker_kill", index))
            await asyncio.sleep(step.down * self.time_scale)
            if deployment.hooks.worker_restart:
                results.append(await asyncio.to_thread(deployment.fire, "worker_restart", index))
        else:
            results.append(await asyncio.to_thread(deployment.fire, "deploy", -1))
        notes = [r.describe() for r in results]
        landed = all(r.ok for r in results)
        if probed and landed:
            after = await asyncio.to_thread(deployment.probe_changed, before)
            changed = after != before and not after.startswith("error: ")
            landed = changed
            notes.append(
                f"probe {deployment.hooks.probe} {before[:60]!r} -> {after[:60]!r}"
                + ("" if changed else " (unchanged: the fault did not show)")
            )
        return self._record(
            step.fault,
            "workers" if index < 0 else f"worker:{index}",
            start,
            landed=landed,
            evidence="; ".join(notes),
            params={**params, "hooks": [r.to_json() for r in results]},
        )

    def _links(self, fault: str) -> Links:
        links = getattr(self.cluster, "links", None)
        if not isinstance(links, Links):
            raise UsageError(
                f"fault {fault!r} needs a cluster started with links=True (scanproof run "
                "does so when the scenario has link faults)"
            )
        return links

    async def _link(
        self, planned: PlannedFault, scaled: float, start: int, params: dict[str, object]
    ) -> FaultRecord:
        step = planned.step
        links = self._links(step.fault)
        targets = planned.links or (max(planned.worker, 0),)
        params = {**params, "links": list(targets)}
        before = {s.link: s for s in await asyncio.to_thread(links.stats)}
        up = step.latency_ms if step.direction in ("both", "up") else 0.0
        down = step.latency_ms if step.direction in ("both", "down") else 0.0

        def inject() -> list[str]:
            notes: list[str] = []
            for i in targets:
                url = links.urls[i]
                if step.fault == "link_latency":
                    links.latency(i, up_ms=up, down_ms=down, jitter_ms=step.jitter_ms)
                    notes.append(_probe_latency(url, i, (up + down) / 1000.0))
                elif step.fault == "link_reset":
                    links.reset(i, commands=step.commands)
                elif step.fault == "link_blackhole":
                    links.blackhole(i)
                    notes.append(_probe_silent(url, i))
                else:
                    links.partition(i)
                    notes.append(_probe_refused(url, i))
            return notes

        begun = time.monotonic()
        notes = await asyncio.to_thread(inject)
        # The landing probes take time: the fault still lasts ``scaled`` s in all.
        await asyncio.sleep(max(0.0, scaled - (time.monotonic() - begun)))
        for i in targets:
            await asyncio.to_thread(links.heal, i)
        after = {s.link: s for s in await asyncio.to_thread(links.stats)}
        if step.fault == "link_reset":
            resets = {i: after[i].resets - before[i].resets for i in targets}
            landed = any(resets.values())
            notes = [
                f"worker {i}: {n} connection(s) reset after {step.commands} command(s) let through"
                for i, n in resets.items()
            ]
        else:
            landed = all(not note.startswith("NOT ") for note in notes)
        if step.fault == "link_partition":
            notes = [
                f"{note}; {after[i].cut - before[i].cut} open connection(s) cut"
                for note, i in zip(notes, targets, strict=True)
            ]
        elif step.fault == "link_blackhole":
            notes = [
                f"{note}; {after[i].dropped_bytes - before[i].dropped_bytes} bytes swallowed"
                for note, i in zip(notes, targets, strict=True)
            ]
        return self._record(
            step.fault,
            "links:" + ",".join(str(i) for i in targets),
            start,
            landed=landed,
            evidence=f"{'; '.join(notes)}; healed after {scaled:.2f} s",
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
        jobs = getattr(self.cluster, "job_workers", None)
        if jobs is not None:
            notes.extend(await heal_job_workers(jobs))
        links = getattr(self.cluster, "links", None)
        if isinstance(links, Links):
            await asyncio.to_thread(links.heal)
            answered = await asyncio.to_thread(_links_answer, links)
            notes.append(f"links healed ({answered} of {len(links.urls)} answer PING)")
            if answered < len(links.urls):
                notes.append("a link does not answer")
        healthy = all(w.alive and not w.stopped for w in self.cluster.workers)
        healthy = healthy and job_workers_healthy(jobs)
        healthy = healthy and not any(n == "a link does not answer" for n in notes)
        return self._record(
            "heal",
            "cluster",
            start,
            landed=healthy and await asyncio.to_thread(backend.ping),
            evidence="; ".join(notes) or "nothing to heal",
        )


def _probe_latency(url: str, index: int, added_s: float) -> str:
    """Landing check of link latency: the best of 3 PINGs over the link takes at least
    the added delay (90 % of it, for timer granularity); says ``NOT ...`` otherwise."""
    client = make_client(url, timeout=added_s + 2.0)
    try:
        best = min(_timed_ping(client) for _ in range(3))
    except redis.RedisError as exc:
        return f"NOT worker {index}: PING over its link failed ({exc})"
    finally:
        client.close()
    seen = f"PING over its link {best * 1000:.1f} ms (added {added_s * 1000:.1f} ms)"
    if best < 0.9 * added_s:
        return f"NOT worker {index}: {seen}"
    return f"worker {index}: {seen}"


def _timed_ping(client: redis.Redis) -> float:
    begin = time.perf_counter()
    client.ping()
    return time.perf_counter() - begin


def _probe_silent(url: str, index: int) -> str:
    """Landing check of a blackhole: a PING over the link gets no answer in 0.2 s."""
    client = make_client(url, timeout=0.2)
    try:
        client.ping()
    except redis.TimeoutError:
        return f"worker {index}: PING over its link unanswered after 0.2 s"
    except redis.RedisError as exc:
        return f"NOT worker {index}: PING over its link failed otherwise ({exc})"
    finally:
        client.close()
    return f"NOT worker {index}: PING over its link was answered"


def _probe_refused(url: str, index: int) -> str:
    """Landing check of a partition: a new connection over the link is refused."""
    client = make_client(url, timeout=0.5)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if "refused" in str(exc).lower():
            return f"worker {index}: connects refused"
        return f"NOT worker {index}: connect failed otherwise ({exc})"
    except redis.RedisError as exc:
        return f"NOT worker {index}: connect failed otherwise ({exc})"
    finally:
        client.close()
    return f"NOT worker {index}: PING over its link was answered"


def _links_answer(links: Links) -> int:
    answered = 0
    for url in links.urls:
        client = make_client(url, timeout=1.0)
        try:
            answered += bool(client.ping())
        except redis.RedisError:
            pass
        finally:
            client.close()
    return answered


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
