"""Carrying out steps against a live cluster, one example at a time, and judging them.

Shared by the hypothesis state machine (``scenarios/stateful``) and ``scanproof
replay``, so a shrunk example replays exactly as it was explored. Each example
starts from clean state (:func:`reset_cluster`: Redis flushed, every worker a
fresh process) with fresh tenant names, and records into its own history shard.

.. code-block:: python

    with Cluster.start(preset="claimed-fix", env={"REFIMPL_TIME_SCALE": "0.003"}) as cluster:
        timing = read_timing(cluster, Contract())
        with asyncio.Runner() as loop:
            reset_cluster(cluster)
            example = Example(cluster, loop, run_dir, timing=timing, tenants=2, label="ex-0")
            example.run(Step(rule="discover", pin=0))
            example.run(Step(rule="status", scan=0, pin=1))
            counts = example.close_and_judge()  # {"status_not_found": 1, ...}
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import redis

from harness import schema as S
from harness._explore_steps import Step
from harness.checkers import CheckConfig, judge
from harness.client import WORKER_HEADER, ScanClient
from harness.cluster import Cluster
from harness.contract import Contract
from harness.errors import InfrastructureError, UsageError
from harness.history import Completion, FaultRecord, History, HistoryWriter, load_history
from harness.nemesis import Nemesis
from harness.plan import PlannedFault
from harness.redis_backends import Fault
from harness.scenario import FaultStep

POLL_INTERVAL_S: Final = 3.0  # service seconds between the polls of wait_complete
DEADLINE_SLACK: Final = 1.5  # as the runner: scheduling delays on a loaded machine
RETENTION_SLACK: Final = 0.1
_MAX_POLLS: Final = 400


@dataclass(frozen=True, slots=True)
class ServiceTiming:
    """The service's clock and promises, in real seconds."""

    time_scale: float
    retention_s: float
    scan_deadline_s: float

    @property
    def poll_s(self) -> float:
        return POLL_INTERVAL_S * self.time_scale

    def check_config(self) -> CheckConfig:
        return CheckConfig(retention_s=self.retention_s, scan_deadline_s=self.scan_deadline_s)


def read_timing(
    cluster: Cluster,
    contract: Contract,
    *,
    retention_s: float | None = None,
    scan_deadline_s: float | None = None,
) -> ServiceTiming:
    """Time scale, retention and deadline from the app's meta (or the given values)."""
    meta: Mapping[str, Any] = {}
    if contract.meta_path:
        try:
            response = httpx.get(cluster.router_url + contract.meta_path, timeout=5.0)
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"cannot read {contract.meta_path}: {exc}") from exc
        if response.status_code == 200 and isinstance(response.json(), dict):
            meta = response.json()

    def pick(name: str, given: float | None) -> float | None:
        for value in (given, getattr(contract, name), meta.get(name)):
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None

    scale = meta.get("time_scale", 1.0)
    scale = float(scale) if isinstance(scale, int | float) and scale > 0 else 1.0
    retention, deadline = pick("retention_s", retention_s), pick("scan_deadline_s", scan_deadline_s)
    if retention is None or deadline is None:
        raise UsageError(
            "--retention-s and --scan-deadline-s are needed: the app has no meta endpoint "
            "that states them (pass both, in seconds)"
        )
    if scan_deadline_s is None and contract.scan_deadline_s is None:
        deadline *= DEADLINE_SLACK
    # The first sighting of a finished scan lags its completion: leave the edge unjudged.
    margin = max(POLL_INTERVAL_S * scale, RETENTION_SLACK * retention)
    return ServiceTiming(scale, max(retention - margin, margin), deadline)


def reference_env(time_scale: float, flags: Mapping[str, Any]) -> dict[str, str]:
    """The reference service's environment: its time scale and flag overrides."""
    env = {"REFIMPL_TIME_SCALE": repr(time_scale)}
    if flags:
        env["REFIMPL_FLAGS"] = json.dumps(dict(flags), sort_keys=True)
    return env


def reset_cluster(cluster: Cluster, *, path: str = Contract().meta_path) -> float:
    """Clean state for the next example: Redis running and empty, every worker fresh,
    and the router's round-robin about to send the next request to worker 0."""
    begin = time.perf_counter()
    if Fault.STALL in cluster.redis.supported_faults:
        cluster.redis.unstall()
    # Workers first: a scan task of the last example could write again after a flush.
    # Fresh workers write nothing to Redis before their first request.
    cluster.deploy(rolling=False, graceful=False)
    cluster.redis.flush()
    _align_router(cluster, path or "/")
    return time.perf_counter() - begin


def _align_router(cluster: Cluster, path: str) -> None:
    """Unrecorded requests until worker n-1 answers: a routed request of an example then
    lands where it landed when the example was first run, whatever came before."""
    last = len(cluster.workers) - 1
    with httpx.Client(base_url=cluster.router_url, timeout=5.0) as client:
        for _ in range(2 * len(cluster.workers)):
            try:
                header = client.get(path).headers.get(WORKER_HEADER, "")
            except httpx.HTTPError as exc:
                raise InfrastructureError(f"router did not answer GET {path}: {exc}") from exc
            if header == str(last):
                return
    raise InfrastructureError(f"router never sent GET {path} to worker {last}")


class _Tap(HistoryWriter):
    """A history writer that also remembers which worker served each request of a step."""

    def __init__(self, directory: Path, *, proc: str) -> None:
        super().__init__(directory, proc=proc)
        self.served: list[int] = []

    def complete(self, op_id: str, completion: Completion) -> None:
        super().complete(op_id, completion)
        self.served.append(completion.worker)


@dataclass(slots=True)
class _Scan:
    scan_id: str | None  # None: the service refused the discover
    owner: str


class Example:
    """One example (or one replay repeat): fresh tenants, one history shard, its scans."""

    def __init__(
        self,
        cluster: Cluster,
        loop: asyncio.Runner,
        directory: Path,
        *,
        timing: ServiceTiming,
        tenants: int,
        label: str,
        contract: Contract | None = None,
    ) -> None:
        self.cluster = cluster
        self.loop = loop
        self.timing = timing
        self.contract = contract or Contract()
        tag = uuid.uuid4().hex[:8]
        self.tenants = tuple(f"t{i}-{tag}" for i in range(max(1, tenants)))
        (directory / f"{label}.jsonl").unlink(missing_ok=True)  # one example per shard
        self.writer = _Tap(directory, proc=label)
        self.scans: list[_Scan] = []
        self.nemesis = Nemesis(
            cluster, self.writer, contract=self.contract, time_scale=timing.time_scale, seed=0
        )
        self.client = ScanClient(
            cluster.router_url,
            self.writer,
            contract=self.contract,
            worker_urls=[w.url for w in cluster.workers],
        )
        self._closed = False

    # ------------------------------------------------------------------ steps
    def run(self, step: Step) -> tuple[int, ...]:
        """Carry out ``step``; returns the worker that served each of its requests."""
        self.writer.served = []
        self.loop.run(self._run(step))
        return tuple(self.writer.served)

    def _scan(self, index: int) -> _Scan | None:
        if index >= len(self.scans):
            return None
        scan = self.scans[index]
        return scan if scan.scan_id is not None else None

    def _pin(self, pin: int) -> int | None:
        return None if pin < 0 else pin % len(self.cluster.workers)

    async def _run(self, step: Step) -> None:
        rule, c = step.rule, self.client
        if rule == "discover":
            tenant = self.tenants[step.tenant % len(self.tenants)]
            filters = {"asset": step.filters} if step.filters else None
            sid = await c.discover(tenant, filters=filters, pin=self._pin(step.pin))
            self.scans.append(_Scan(sid, tenant))
        elif rule in ("status", "results", "wait_complete", "probe"):
            scan = self._scan(step.scan)
            if scan is None or scan.scan_id is None:
                return  # nothing to ask about: the scan was never accepted
            pin = self._pin(step.pin)
            if rule == "status":
                await c.status(scan.owner, scan.scan_id, pin=pin)
            elif rule == "results":
                await c.results(scan.owner, scan.scan_id, pin=pin)
            elif rule == "wait_complete":
                await self._wait_complete(scan.owner, scan.scan_id, pin)
            else:
                others = [t for t in self.tenants if t != scan.owner]
                if others:
                    prober = others[step.tenant % len(others)]
                    await c.status(prober, scan.scan_id, pin=pin)
                    await c.results(prober, scan.scan_id, pin=pin)
        elif rule == "wait":
            await asyncio.sleep(step.seconds * self.timing.time_scale)
        else:
            await self._fault(step)

    async def _wait_complete(self, owner: str, scan_id: str, pin: int | None) -> None:
        # Bounded in count and time: a scan that never finishes is the checkers' business.
        until = time.monotonic() + self.timing.scan_deadline_s * 1.2
        for _ in range(_MAX_POLLS):
            done = await self.client.status(owner, scan_id, pin=pin)
            # not_found will not turn into complete on this worker: stop, the poll is recorded
            if done.outcome != "ok" or done.body_status in ("complete", "failed", "not_found"):
                return
            if time.monotonic() >= until:
                return
            await asyncio.sleep(self.timing.poll_s)

    async def _fault(self, step: Step) -> None:
        worker = step.worker % len(self.cluster.workers)
        if step.rule == "restart":
            start = time.monotonic_ns()
            old = self.cluster.workers[worker].pid
            seconds = await asyncio.to_thread(self.cluster.restart, worker)
            new = self.cluster.workers[worker].pid
            self.writer.fault(
                FaultRecord(
                    fault_id=f"r{start}",
                    fault="worker_restart",
                    target=f"worker:{worker}",
                    t_start_ns=start,
                    t_end_ns=time.monotonic_ns(),
                    landed=new != old,
                    evidence=f"pid {old} -> {new} ready in {seconds * 1000:.0f} ms",
                    params=json.dumps({"worker": worker}),
                )
            )
            return
        if step.rule == "deploy" and not step.graceful:
            start = time.monotonic_ns()
            before = [w.pid for w in self.cluster.workers]
            times = await asyncio.to_thread(
                lambda: self.cluster.deploy(rolling=step.rolling, graceful=False)
            )
            after = [w.pid for w in self.cluster.workers]
            self.writer.fault(
                FaultRecord(
                    fault_id=f"d{start}",
                    fault="deploy",
                    target="workers",
                    t_start_ns=start,
                    t_end_ns=time.monotonic_ns(),
                    landed=all(a != b for a, b in zip(before, after, strict=True)),
                    evidence=f"SIGKILL pids {before} -> {after}; ready in "
                    + ", ".join(f"{t * 1000:.0f}" for t in times)
                    + " ms",
                    params=json.dumps({"rolling": step.rolling, "graceful": False}),
                )
            )
            return
        if step.rule in ("delete_keys", "expire_keys"):
            await asyncio.to_thread(self._lose_keys, step)
            return
        name = {"kill": "worker_kill", "pause": "worker_pause"}.get(step.rule, step.rule)
        fault = FaultStep(
            at=0.0,
            fault=name,
            key_class=step.key_class,
            fraction=1.0,  # every key of the class: a sample would differ between replays
            duration=max(step.seconds, 0.1),
            worker=worker,
            down=step.seconds,
            rolling=step.rolling,
        )
        record = await self.nemesis.apply(PlannedFault(at_s=0.0, step=fault, worker=worker))
        if not record.landed:
            raise InfrastructureError(f"{step.describe()} did not land: {record.evidence}")

    def _lose_keys(self, step: Step) -> None:
        # Not the nemesis's: it waits up to 2 s for the keys to stay gone, and a running
        # scan rewrites some of them at once. One example owns this Redis, so the loss
        # is recorded with scope "all": it excuses what it did to every scan so far.
        start = time.monotonic_ns()
        client = self.cluster.redis.client()
        try:
            keys = sorted(
                {
                    k.decode() if isinstance(k, bytes) else str(k)
                    for glob in self.contract.key_globs(step.key_class)
                    for k in client.scan_iter(match=glob, count=500)
                }
            )
        except redis.RedisError as exc:
            raise InfrastructureError(f"SCAN for {step.key_class} keys failed: {exc}") from exc
        finally:
            client.close()
        if keys and step.rule == "delete_keys":
            self.cluster.redis.delete(*keys)
        for key in keys if step.rule == "expire_keys" else ():
            self.cluster.redis.expire(key, 0.001)
        self.writer.fault(
            FaultRecord(
                fault_id=f"k{start}",
                fault=step.rule,
                target=f"{step.key_class} keys",
                t_start_ns=start,
                t_end_ns=time.monotonic_ns(),
                landed=bool(keys),
                evidence=f"{len(keys)} {step.key_class} keys",
                params=json.dumps({"key_class": step.key_class}),
                destructive=bool(keys),
                scope="all",
            )
        )

    # ---------------------------------------------------------------- judging
    def history(self) -> History:
        return load_history(self.writer.path.parent, shards=[self.writer.path])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.loop.run(self.client.aclose())
            self.writer.close()

    def close_and_judge(self) -> dict[str, int]:
        """Close the example and count its unexcused anomalies per class."""
        self.close()
        if not self.writer.path.stat().st_size:
            return dict.fromkeys(S.ANOMALY_CLASSES, 0)
        history = self.history()
        ops = history.ops
        if not ((ops[S.KIND] != "discover") & (ops[S.OUTCOME] == "ok")).any():
            # nothing was read back: no class can have an anomaly (a judgement costs ~0.1 s)
            return dict.fromkeys(S.ANOMALY_CLASSES, 0)
        return count_anomalies(history, self.timing)


def count_anomalies(history: History, timing: ServiceTiming) -> dict[str, int]:
    """Unexcused anomalies per class; a checker that crashed counts as -1 (unknown).

    ``stuck_scan`` is judged only for scans whose owner, asking after the deadline,
    was told neither complete nor failed: an example that ended, or waited on
    something else, while a scan ran past its deadline has not seen it stuck.
    """
    config = timing.check_config()
    verdict = judge(history, config)
    counts = {n: (-1 if r.error else r.count) for n, r in verdict.classes.items()}
    if counts.get("stuck_scan", 0) > 0:
        counts["stuck_scan"] = _stuck_among_watched(history, config)
    return counts


def _stuck_among_watched(history: History, config: CheckConfig) -> int:
    ops = history.ops
    ok = ops[ops[S.OUTCOME] == "ok"]
    disc = ok[(ok[S.KIND] == "discover") & (ok[S.SCAN_ID] != "")]
    deadline_ns = int(config.scan_deadline_s * 1e9)
    due = dict(zip(disc[S.SCAN_ID], disc[S.T_COMPLETE] + deadline_ns, strict=True))
    owner = dict(zip(disc[S.SCAN_ID], disc[S.TENANT], strict=True))
    polls = ok[(ok[S.KIND] == "status") & ok[S.SCAN_ID].isin(due)]
    # Seen stuck: the owner asked after the deadline and was not told complete or failed.
    watched = {
        sid
        for sid, tenant, t, word in zip(
            polls[S.SCAN_ID], polls[S.TENANT], polls[S.T_INVOKE], polls[S.BODY_STATUS], strict=True
        )
        if tenant == owner[sid] and t >= due[sid] and word not in ("complete", "failed")
    }
    unwatched = set(due) - watched
    if not unwatched:
        verdict = judge(history, config)
    else:
        keep = ~ops[S.SCAN_ID].isin(unwatched)
        verdict = judge(
            History(ops=ops[keep].reset_index(drop=True), faults=history.faults), config
        )
    result = verdict.classes["stuck_scan"]
    return -1 if result.error else result.count
