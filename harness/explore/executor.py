"""Carrying out steps against a live cluster, one example at a time, and judging them.

Shared by the hypothesis state machine (``scenarios/stateful``) and ``scanproof
replay``, so a shrunk example replays exactly as it was explored. Each example
starts from clean state (:func:`reset_cluster`: Redis flushed, every worker a
fresh process) with fresh tenant names, and records into its own history shard.

.. code-block:: python

    env = reference.service_env(reference.DEFAULT_PRESET, {}, seed=0, time_scale=0.003)
    with Cluster.start(env=env) as cluster:
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
import functools
import json
import math
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import redis

from harness.cluster import Cluster
from harness.cluster.redis import Fault
from harness.errors import InfrastructureError, UsageError
from harness.explore.steps import Step
from harness.faults.nemesis import Nemesis
from harness.history import schema as S
from harness.history.tables import Completion, FaultRecord, History, HistoryWriter, load_history
from harness.judging.checkers import CheckConfig, judge
from harness.judging.window import judging_window, missing_retention, stated_time_scale
from harness.run.calibrate import CATALOGUE_SCAN_S, CalibrationSettings, calibrate
from harness.run.client import WORKER_HEADER, ScanClient, read_meta
from harness.run.plan import PlannedFault
from harness.run.scenario import FaultStep
from harness.targets.contract import Contract

POLL_INTERVAL_S: Final = 3.0  # service seconds between the polls of wait_complete
_MAX_POLLS: Final = 400
ASSETS: Final = ("", "BTC", "ETH")  # the filters a discover draws ("": none)


def other_filters(filters: str) -> str:
    """Filters other than ``filters``, for a second scan with different ones.

    >>> other_filters(""), other_filters("BTC"), other_filters("ETH")
    ('BTC', 'ETH', '')
    """
    return ASSETS[(ASSETS.index(filters) + 1) % len(ASSETS)] if filters in ASSETS else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceTiming:
    """The service's clock and promises, in real seconds, and where the clock came from.

    ``retention_s``/``scan_deadline_s`` are what the checkers judge (margins applied);
    ``stated_retention_s`` is the promise itself (explore waits past it to see results
    expire); ``scan_s`` a typical scan, real seconds; ``source`` where the time scale
    came from (``command line``, ``contract``, ``app meta``, ``calibration``, ...).

    >>> t = ServiceTiming(time_scale=0.01, retention_s=5.4, scan_deadline_s=3.0)
    >>> round(t.poll_s, 3), t.service_s(1.0), t.check_config().progress
    (0.03, 100.0, True)
    """

    time_scale: float
    retention_s: float
    scan_deadline_s: float
    stated_retention_s: float = 0.0  # 0: the judged one
    progress: bool = True  # the contract names a progress field
    lost_state_excused: bool = True  # the contract's choice (see CheckConfig)
    source: str = "default"

    @property
    def poll_s(self) -> float:
        return POLL_INTERVAL_S * self.time_scale

    @property
    def scan_s(self) -> float:
        """A typical scan, real seconds (the catalogue's scan on this clock)."""
        return CATALOGUE_SCAN_S * self.time_scale

    def service_s(self, real_s: float) -> float:
        """``real_s`` real seconds in service seconds (whole, rounded up)."""
        return float(math.ceil(real_s / self.time_scale))

    def check_config(self, contract: Contract | None = None) -> CheckConfig:
        """The judge's settings on this clock: ``contract``'s promises (tenancy, results,
        progress...) when given, else the progress and lost-state choices alone."""
        if contract is not None:
            return CheckConfig.for_contract(
                contract, retention_s=self.retention_s, scan_deadline_s=self.scan_deadline_s
            )
        return CheckConfig(
            retention_s=self.retention_s,
            scan_deadline_s=self.scan_deadline_s,
            progress=self.progress,
            lost_state_excused=self.lost_state_excused,
        )

    def describe(self) -> str:
        """``time scale 0.00545 (calibration), retention 6 s, scan deadline 4.1 s``."""
        return (
            f"time scale {self.time_scale:.4g} ({self.source}), retention "
            f"{self.stated_retention_s or self.retention_s:.3g} s, scan deadline "
            f"{self.scan_deadline_s:.3g} s"
        )


def read_timing(
    cluster: Cluster,
    contract: Contract,
    *,
    retention_s: float | None = None,
    scan_deadline_s: float | None = None,
    time_scale: float | None = None,
    recorded: Mapping[str, float] | None = None,
    calibrate_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ServiceTiming:
    """The time base of runs (:mod:`harness.judging.window`) with explore's own poll
    interval: the user's values, the contract, the app's meta, else ``recorded`` (a
    replay file's calibrated time scale and deadline) or a calibration of the cluster
    (:func:`harness.run.calibrate.calibrate`, recorded in ``calibrate_dir``).
    UsageError when no layer states the retention; CalibrationError (exit 3) when
    calibration cannot measure."""
    from harness.run.runner import contract_time_scale

    meta = read_meta(cluster.router_url, contract.meta_path)
    missing_retention(meta=meta, retention_s=retention_s, contract_retention_s=contract.retention_s)
    contract_scale = contract_time_scale(contract)
    stated = stated_time_scale(meta=meta, time_scale=time_scale, contract_time_scale=contract_scale)
    calibrated: Mapping[str, float] | None = None
    source = ""
    if stated is None and recorded:
        calibrated, source = recorded, "calibration recorded in the replay file"
    elif stated is None:
        if calibrate_dir is None:
            raise UsageError("no time scale stated: pass --time-scale or set it in the contract")
        calibrate_dir.mkdir(parents=True, exist_ok=True)
        settings = CalibrationSettings()
        if progress is not None:
            progress(
                "calibrating: no time scale stated by --time-scale, the contract or the app's "
                f"meta; measuring {settings.scans} fault-free scans"
            )
        measured = calibrate(cluster.router_url, contract, calibrate_dir, settings)
        calibrated = measured.stated()
        source = (
            f"calibration: {measured.n} scans, median {measured.median_s:.3g} s, "
            f"p95 {measured.p95_s:.3g} s"
        )
    window = judging_window(
        meta=meta,
        poll_interval_s=POLL_INTERVAL_S,
        retention_s=retention_s,
        scan_deadline_s=scan_deadline_s,
        time_scale=time_scale,
        contract_retention_s=contract.retention_s,
        contract_deadline_s=contract.scan_deadline_s,
        contract_time_scale=contract_scale,
        calibrated=calibrated,
    )
    timing = ServiceTiming(
        time_scale=window.time_scale.value,
        retention_s=window.retention_s,
        scan_deadline_s=window.scan_deadline_s,
        stated_retention_s=window.stated["retention_s"].value,
        progress=bool(contract.progress_field),
        lost_state_excused=contract.lost_state_excused,
        source=source or window.time_scale.source,
    )
    if progress is not None:
        progress(f"time base: {timing.describe()}")
    return timing


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
    with httpx.Client(base_url=cluster.router_url, timeout=5.0, verify=_tls()) as client:
        for _ in range(2 * len(cluster.workers)):
            try:
                header = client.get(path).headers.get(WORKER_HEADER, "")
            except httpx.HTTPError as exc:
                raise InfrastructureError(f"router did not answer GET {path}: {exc}") from exc
            if header == str(last):
                return
    raise InfrastructureError(f"router never sent GET {path} to worker {last}")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One default TLS context for every example's client (never used on loopback HTTP)."""
    return ssl.create_default_context()


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
    filters: str = ""


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
            # a fresh connection pool per example, one TLS context for all (building
            # one costs 20-60 ms, a third of what resetting the cluster costs)
            transport=httpx.AsyncHTTPTransport(retries=0, verify=_tls()),
        )
        self._closed = False
        self.started_ns: list[int] = []  # when each step began (the history's clock)
        self.first_ns: dict[str, int] = {}  # class -> its first witness's invoke (judged)

    def steps_until(self, name: str) -> int | None:
        """How many steps it took to show ``name``: the steps up to the one during which
        its first witness was asked (None: not known)."""
        at = self.first_ns.get(name)
        if at is None or not self.started_ns:
            return None
        return max(1, sum(1 for t in self.started_ns if t <= at))

    # ------------------------------------------------------------------ steps
    def run(self, step: Step) -> tuple[int, ...]:
        """Carry out ``step``; returns the worker that served each of its requests."""
        self.started_ns.append(time.monotonic_ns())
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
            await self._discover(tenant, step.filters, step.pin)
        elif rule == "rediscover":
            await self._rediscover(step)
        elif rule in ("status", "results", "wait_complete", "probe", "alternate"):
            scan = self._scan(step.scan)
            if scan is None or scan.scan_id is None:
                return  # nothing to ask about: the scan was never accepted
            pin = self._pin(step.pin)
            if rule == "alternate":
                stagger = step.seconds * self.timing.time_scale
                await self._wait_complete(scan.owner, scan.scan_id, pin, self._other(step), stagger)
            elif rule == "status":
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

    async def _discover(self, tenant: str, filters: str, pin: int) -> None:
        body = {"asset": filters} if filters else None
        sid = await self.client.discover(tenant, filters=body, pin=self._pin(pin))
        self.scans.append(_Scan(sid, tenant, filters))

    async def _rediscover(self, step: Step) -> None:
        """The owner of scan ``step.scan`` starts another one, with the same filters or
        other ones, at once (overlapping) or once the first is finished (back to back).
        A scan that was refused still counts as a scan (indices stay stable)."""
        if step.scan >= len(self.scans):
            return
        first = self.scans[step.scan]
        if step.after and first.scan_id is not None:
            await self._wait_complete(first.owner, first.scan_id, self._pin(step.pin))
        filters = first.filters if step.same else other_filters(first.filters)
        await self._discover(first.owner, filters, step.pin)

    def _other(self, step: Step) -> int:
        """The second worker of an alternation: ``step.worker``, else the next one."""
        n = len(self.cluster.workers)
        other = step.worker % n
        return (other + 1) % n if other == self._pin(step.pin) else other

    async def _wait_complete(
        self,
        owner: str,
        scan_id: str,
        pin: int | None,
        then: int | None = None,
        stagger_s: float = 0.0,
    ) -> None:
        # Bounded in count and time: a scan that never finishes is the checkers' business.
        # ``then``: every other poll goes to that worker (pin, then, pin, then, ...), the
        # first one ``stagger_s`` after the first on pin: two workers that read the scan
        # at different moments (a per-worker cache shows it).
        until = time.monotonic() + self.timing.scan_deadline_s * 1.2
        for i in range(_MAX_POLLS):
            target = then if then is not None and i % 2 else pin
            done = await self.client.status(owner, scan_id, pin=target)
            # not_found will not turn into complete on this worker: stop, the poll is recorded
            if done.outcome != "ok" or done.body_status in ("complete", "failed", "not_found"):
                if then is not None and done.body_status in ("complete", "failed"):
                    # the other worker at once: both must agree that the scan ended (one
                    # answering from a read made before the end says it is still running)
                    await self.client.status(owner, scan_id, pin=pin if target == then else then)
                return
            if time.monotonic() >= until:
                return
            await asyncio.sleep(stagger_s if i == 0 and then is not None else self.timing.poll_s)

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
        return count_anomalies(history, self.timing, first_ns=self.first_ns, contract=self.contract)


def count_anomalies(
    history: History,
    timing: ServiceTiming,
    *,
    first_ns: dict[str, int] | None = None,
    contract: Contract | None = None,
) -> dict[str, int]:
    """Unexcused anomalies per class; a checker that crashed counts as -1 (unknown).

    ``stuck_scan`` is judged only for scans whose owner, asking after the deadline,
    was told neither complete nor failed: an example that ended, or waited on
    something else, while a scan ran past its deadline has not seen it stuck.
    """
    config = timing.check_config(contract)
    verdict = judge(history, config)
    counts = {n: (-1 if r.error else r.count) for n, r in verdict.classes.items()}
    if first_ns is not None:  # stuck_scan: judged on the whole example, never cut short
        first_ns.update(
            {
                n: min(w.t_invoke_ns for w in r.witnesses)
                for n, r in verdict.classes.items()
                if r.witnesses and r.count > 0 and n != "stuck_scan"
            }
        )
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
