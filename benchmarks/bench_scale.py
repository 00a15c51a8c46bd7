"""Cluster scale: start-to-ready, teardown and memory for 4 to 64 forked workers.

For each app (``--apps``: the light ``benchmarks.apps.kv:app`` and the
reference service) and each worker count (``--sizes``, default 4 16 32 64),
``--repeats`` times, the sizes' order rotating from one repeat to the next:

- start: wall time of ``Cluster.start(...)`` (Redis, the zygote's import of the
  app, the router, every worker forked and reporting ready);
- ready: wall time from the same start call until **every worker has answered
  through the router** (sequential requests until each worker index has been
  seen in ``X-Scanproof-Worker`` with a status below 500; the first request to
  a worker also opens its Redis connection);
- where the start time goes: when Redis answered, the zygote had imported the
  app, the last worker was forked (from ``/proc/<pid>/stat``, 10 ms ticks), the
  last worker reported ready, and the router was read as ready, in ms after
  the start call;
- memory, after ``--warm-requests`` more requests per worker through the router:
  RSS, PSS and USS (``Private_Clean + Private_Dirty``) from
  ``/proc/<pid>/smaps_rollup`` of every worker, the zygote, the router and
  Redis; USS is what one more forked worker costs;
- teardown: wall time of ``cluster.close()``, and how many of the cluster's
  processes were still alive after it (must be 0).

Then router throughput with ``--throughput-workers`` (16) workers: two
clusters of the light app side by side (16 workers and the 4-worker
baseline), driven by ``wrk`` (``apt-get install wrk``) with bench_router's
load (``--clients`` wrk processes x ``--connections``), ``--rounds`` rounds
whose order rotates: routed to the 16, routed to the 4, and direct to the
16's first ``--clients`` workers (on 2 cores 4 busy workers already saturate
the machine). Ratios are medians of the rounds' ratios.

Usage::

    python benchmarks/bench_scale.py --repeats 5 --rounds 6 --json scale.json
    python benchmarks/bench_scale.py --sizes 4 16 --repeats 1 --rounds 0   # quick
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common
import httpx
from bench_router import _cpu_seconds, _measured_run, _wrk

from harness.cluster import Cluster
from harness.cluster.redis import EmbeddedRedis, ServerRedis
from harness.cluster.router import Router
from harness.cluster.supervisor import Supervisor
from harness.targets.reference import DEFAULT_APP

KV_APP = "benchmarks.apps.kv:app"
APPS = {"kv": KV_APP, "reference": DEFAULT_APP}
#: A cheap request per app that reaches Redis: the kv GET, and a status poll of an
#: unknown scan (a not_found answer after one Redis lookup).
PROBES = {
    KV_APP: ("/kv", {}),
    DEFAULT_APP: (
        "/api/v1/opportunities/status/bench-unknown",
        {"Authorization": "Bearer bench_user"},
    ),
}
PHASES = ("redis", "zygote", "forked", "workers", "router", "start", "ready")
PHASE_NOTES = {
    "redis": "Redis answered PING",
    "zygote": "zygote imported the app",
    "forked": "last worker forked",
    "workers": "last worker reported ready",
    "router": "router read as ready",
    "start": "Cluster.start returned",
    "ready": "every worker answered via the router",
}


# ------------------------------------------------------------------ machine facts
def _read_int(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "?"


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs or is stopped; False once it is a zombie or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def machine_line() -> str:
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return _common.machine_line(f"{memory:.0f} GiB")


def limits() -> dict[str, Any]:
    """What bounds a 64-worker cluster: descriptors, processes, listen backlog, ports."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    return {
        "nofile_soft": nofile[0],
        "nofile_hard": nofile[1],
        "nproc_soft": nproc[0],
        "pid_max": _read_int("/proc/sys/kernel/pid_max"),
        "threads_max": _read_int("/proc/sys/kernel/threads-max"),
        "cgroup_pids_max": _read_int("/sys/fs/cgroup/pids.max"),
        "somaxconn": _read_int("/proc/sys/net/core/somaxconn"),
        "ephemeral_ports": _read_int("/proc/sys/net/ipv4/ip_local_port_range").replace("\t", "-"),
    }


# ------------------------------------------------------------------ measurements
def smaps(pid: int) -> dict[str, int] | None:
    """RSS, PSS and USS of ``pid`` in KiB from ``/proc/<pid>/smaps_rollup``; None if gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0])
    return {
        "rss": fields.get("Rss", 0),
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


_BOOT_OFFSET = time.perf_counter() - time.clock_gettime(time.CLOCK_BOOTTIME)


def _started_at(pid: int) -> float | None:
    """When ``pid`` was forked, on the ``time.perf_counter`` clock (10 ms ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[19]) / os.sysconf("SC_CLK_TCK") + _BOOT_OFFSET


@contextlib.contextmanager
def phase_clock() -> Iterator[dict[str, float]]:
    """Record (perf_counter) when each step of ``Cluster.start`` last finished.

    Wraps the supervisor's, router's and local Redis's waits for the duration of
    the block; the benchmark clears the dict before each start.
    """
    marks: dict[str, float] = {}
    patched: list[tuple[type, str, Any]] = []

    def wrap(public: type, name: str, label: str) -> None:
        # the class that defines ``name`` (a public class may inherit it from a private base)
        cls = next(c for c in public.__mro__ if name in c.__dict__)
        if any(c is cls and n == name for c, n, _ in patched):
            return
        original = cls.__dict__[name]

        @functools.wraps(original)
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            marks[label] = time.perf_counter()
            return result

        patched.append((cls, name, original))
        setattr(cls, name, timed)

    wrap(ServerRedis, "wait_ready", "redis")
    wrap(EmbeddedRedis, "wait_ready", "redis")
    wrap(Supervisor, "_await_zygote", "zygote")
    wrap(Supervisor, "_await_ready", "workers")
    wrap(Router, "wait_ready", "router")
    try:
        yield marks
    finally:
        for cls, name, original in reversed(patched):
            setattr(cls, name, original)


def answer_all(
    client: httpx.Client, url: str, headers: dict[str, str], workers: int, timeout: float = 30.0
) -> int:
    """Send requests until every worker has answered below 500; the number of others."""
    seen: set[str] = set()
    bad = 0
    deadline = time.perf_counter() + timeout
    while len(seen) < workers:
        if time.perf_counter() > deadline:
            raise SystemExit(f"only workers {sorted(seen)} answered within {timeout:.0f} s")
        response = client.get(url, headers=headers)
        worker = response.headers.get("x-scanproof-worker")
        if response.status_code < 500 and worker is not None:
            seen.add(worker)
        else:
            bad += 1
    return bad


def one_cluster(
    app: str,
    workers: int,
    *,
    redis: str,
    warm: int,
    log_dir: Path,
    marks: dict[str, float],
    client: httpx.Client,
) -> dict[str, Any]:
    """Start, probe, measure and tear down one cluster; times in ms, memory in KiB."""
    path, headers = PROBES[app]
    marks.clear()
    t0 = time.perf_counter()
    cluster = Cluster.start(app=app, workers=workers, redis=redis, log_dir=log_dir)
    try:
        marks["start"] = time.perf_counter()
        url = cluster.router_url + path
        bad = answer_all(client, url, headers, workers)
        marks["ready"] = time.perf_counter()
        worker_pids = [w.pid for w in cluster.workers]
        # CPU each worker spent from its fork to its first answer (10 ms ticks).
        worker_cpu = [_cpu_seconds(p) * 1000 for p in worker_pids]
        forks = [s for s in map(_started_at, worker_pids) if s is not None]
        if forks:
            marks["forked"] = max(forks)
        for _ in range(warm * workers):
            client.get(url, headers=headers)
        zygote = [p for p in cluster.supervisor.pids() if p not in worker_pids]
        memory = {
            "workers": [m for m in map(smaps, worker_pids) if m is not None],
            "zygote": [m for m in map(smaps, zygote) if m is not None],
            "router": [m for m in [smaps(cluster.router_pid)] if m is not None],
            "redis": [m for m in map(smaps, cluster.redis.pids()) if m is not None],
        }
        pids = cluster.pids()
    finally:
        t1 = time.perf_counter()
        cluster.close()
        teardown = time.perf_counter() - t1
    # close() SIGKILLs the workers without waiting for them: a few may still be exiting.
    left = [p for p in pids if is_alive(p)]
    deadline = time.perf_counter() + 5.0
    while any(is_alive(p) for p in pids) and time.perf_counter() < deadline:
        time.sleep(0.001)
    gone = time.perf_counter() - t1
    return {
        "app": app,
        "workers": workers,
        "phases_ms": {k: (marks[k] - t0) * 1000 for k in PHASES if k in marks},
        "start_ms": (marks["start"] - t0) * 1000,
        "ready_ms": (marks["ready"] - t0) * 1000,
        "teardown_ms": teardown * 1000,
        "bad_probe_answers": bad,
        "worker_cpu_to_ready_ms": worker_cpu,
        "processes": len(pids),
        "left_alive": len(left),
        "all_gone_ms": gone * 1000,
        "left_after_5s": sum(is_alive(p) for p in pids),
        "memory_kib": memory,
    }


# ------------------------------------------------------------------ throughput
def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Routed throughput with ``--throughput-workers`` workers vs 4, and vs direct."""
    big, small = args.throughput_workers, 4
    path = PROBES[KV_APP][0]
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        Cluster.start(
            app=KV_APP, workers=big, redis=args.redis, log_dir=Path(tmp) / "big"
        ) as cluster_big,
        Cluster.start(
            app=KV_APP, workers=small, redis=args.redis, log_dir=Path(tmp) / "small"
        ) as cluster_small,
    ):
        for cluster in (cluster_big, cluster_small):
            client = cluster.redis.client()
            client.set("bench:key", "v")
            client.close()
        direct = [f"{w.url}{path}" for w in cluster_big.workers]
        modes: dict[str, tuple[Cluster, list[str]]] = {
            f"routed-{big}": (cluster_big, [cluster_big.router_url + path] * args.clients),
            f"routed-{small}": (cluster_small, [cluster_small.router_url + path] * args.clients),
            f"direct-{big}": (cluster_big, [direct[k % len(direct)] for k in range(args.clients)]),
        }
        names = list(modes)
        for _cluster, urls in modes.values():
            _wrk(urls, args.connections, 2)  # warm-up: connection pools, caches
        rounds: list[dict[str, Any]] = []
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            runs: dict[str, dict[str, float]] = {}
            for name in order:
                cluster, urls = modes[name]
                proxy = cluster.router_pid if name.startswith("routed") else None
                runs[name] = _measured_run(
                    cluster.pids(), proxy, urls, args.connections, args.duration
                )
            rb, rs, d = runs[f"routed-{big}"], runs[f"routed-{small}"], runs[f"direct-{big}"]
            row: dict[str, Any] = {
                "order": order,
                "runs": runs,
                "big_over_small": rb["rps"] / rs["rps"],
                "big_over_direct": rb["rps"] / d["rps"],
                "cpu_big_over_small": rs["cpu_us_per_req"] / rb["cpu_us_per_req"],
            }
            rounds.append(row)
            print(
                "  "
                + "  ".join(
                    f"{n} {runs[n]['rps']:6.0f} req/s ({runs[n]['cpu_us_per_req']:4.0f} us CPU)"
                    for n in names
                )
                + f"  {big}/{small} {row['big_over_small']:.3f}"
                f"  {big}/direct {row['big_over_direct']:.3f}",
                flush=True,
            )
    return {
        "workers": big,
        "baseline_workers": small,
        "rounds": rounds,
        "median_rps": {n: statistics.median(r["runs"][n]["rps"] for r in rounds) for n in names},
        "median_router_cpu_us_per_req": {
            n: statistics.median(r["runs"][n]["proxy_cpu_us_per_req"] for r in rounds)
            for n in names
            if n.startswith("routed")
        },
        "median_big_over_small": statistics.median(r["big_over_small"] for r in rounds),
        "median_big_over_direct": statistics.median(r["big_over_direct"] for r in rounds),
        "median_cpu_big_over_small": statistics.median(r["cpu_big_over_small"] for r in rounds),
    }


# ------------------------------------------------------------------ tables
def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _max(values: list[float]) -> float:
    return max(values) if values else float("nan")


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def _col(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows]


def _mem(
    rows: list[dict[str, Any]], role: str, field: str, agg: Callable[[list[float]], float] = _med
) -> float:
    """``agg`` over one role's processes in each repeat, then the median over the repeats."""
    per = [agg([float(m[field]) for m in r["memory_kib"][role]]) for r in rows]
    return _med([p for p in per if p == p])  # NaN: that role had no process


def _total_pss(row: dict[str, Any]) -> float:
    return float(sum(m["pss"] for ms in row["memory_kib"].values() for m in ms))


def summarize(rows: list[dict[str, Any]], target_ms: float) -> list[dict[str, Any]]:
    """One summary per (app, workers): medians and maxima over the repeats."""
    out = []
    keys = sorted({(r["app"], r["workers"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for app, n in keys:
        mine = [r for r in rows if r["app"] == app and r["workers"] == n]
        summary = {
            "app": app,
            "workers": n,
            "repeats": len(mine),
            "start_median_ms": _med(_col(mine, "start_ms")),
            "start_max_ms": max(_col(mine, "start_ms")),
            "ready_median_ms": _med(_col(mine, "ready_ms")),
            "ready_max_ms": max(_col(mine, "ready_ms")),
            "teardown_median_ms": _med(_col(mine, "teardown_ms")),
            "teardown_max_ms": max(_col(mine, "teardown_ms")),
            "left_alive": sum(int(r["left_alive"]) for r in mine),
            "worker_cpu_median_ms": _med(
                [_med(r["worker_cpu_to_ready_ms"]) for r in mine if r["worker_cpu_to_ready_ms"]]
            ),
            "worker_cpu_total_median_ms": _med([sum(r["worker_cpu_to_ready_ms"]) for r in mine]),
            "all_gone_median_ms": _med(_col(mine, "all_gone_ms")),
            "all_gone_max_ms": max(_col(mine, "all_gone_ms")),
            "left_after_5s": sum(int(r["left_after_5s"]) for r in mine),
            "bad_probe_answers": sum(int(r["bad_probe_answers"]) for r in mine),
            "phases_median_ms": {
                p: _med([r["phases_ms"][p] for r in mine if p in r["phases_ms"]]) for p in PHASES
            },
            "worker_rss_kib": _mem(mine, "workers", "rss"),
            "worker_pss_kib": _mem(mine, "workers", "pss"),
            "worker_uss_kib": _mem(mine, "workers", "uss"),
            "worker_uss_max_kib": _mem(mine, "workers", "uss", _max),
            "zygote_rss_kib": _mem(mine, "zygote", "rss"),
            "zygote_pss_kib": _mem(mine, "zygote", "pss"),
            "zygote_uss_kib": _mem(mine, "zygote", "uss"),
            "router_rss_kib": _mem(mine, "router", "rss"),
            "router_uss_kib": _mem(mine, "router", "uss"),
            "redis_rss_kib": _mem(mine, "redis", "rss"),
            "total_pss_kib": _med([_total_pss(r) for r in mine]),
        }
        summary["target_met"] = summary["ready_max_ms"] <= target_ms if n == 32 else None
        out.append(summary)
    return out


def print_tables(summaries: list[dict[str, Any]]) -> None:
    print("\nstart and teardown (ms; median / max over the repeats)\n")
    print(
        "| app | workers | start | ready (all answer via router) | teardown (close) "
        "| every process gone | alive after close / after 5 s |"
    )
    print("|---|---|---|---|---|---|---|")
    for s in summaries:
        print(
            f"| `{s['app']}` | {s['workers']} | {s['start_median_ms']:.0f} / "
            f"{s['start_max_ms']:.0f} | **{s['ready_median_ms']:.0f}** / {s['ready_max_ms']:.0f} "
            f"| {s['teardown_median_ms']:.0f} / {s['teardown_max_ms']:.0f} "
            f"| {s['all_gone_median_ms']:.0f} / {s['all_gone_max_ms']:.0f} "
            f"| {s['left_alive']} / {s['left_after_5s']} |"
        )
    print("\nwhere the start goes (ms after the start call, medians)\n")
    print("| app | workers | " + " | ".join(PHASES) + " |")
    print("|---|---|" + "---|" * len(PHASES))
    for s in summaries:
        cells = " | ".join(f"{s['phases_median_ms'][p]:.0f}" for p in PHASES)
        print(f"| `{s['app']}` | {s['workers']} | {cells} |")
    print("\n" + "; ".join(f"{p}: {PHASE_NOTES[p]}" for p in PHASES))
    print("\nCPU the workers spent from fork to their first answer (ms, medians)\n")
    print("| app | workers | per worker | all workers |")
    print("|---|---|---|---|")
    for s in summaries:
        print(
            f"| `{s['app']}` | {s['workers']} | {s['worker_cpu_median_ms']:.0f} "
            f"| {s['worker_cpu_total_median_ms']:.0f} |"
        )
    print("\nmemory (MiB; medians over workers, then over repeats)\n")
    print(
        "| app | workers | worker RSS | worker PSS | worker USS (max) | zygote RSS / PSS / USS "
        "| router RSS / USS | Redis RSS | cluster PSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        print(
            f"| `{s['app']}` | {s['workers']} | {_mib(s['worker_rss_kib'])} | "
            f"{_mib(s['worker_pss_kib'])} | **{_mib(s['worker_uss_kib'])}** "
            f"({_mib(s['worker_uss_max_kib'])}) | {_mib(s['zygote_rss_kib'])} / "
            f"{_mib(s['zygote_pss_kib'])} / {_mib(s['zygote_uss_kib'])} | "
            f"{_mib(s['router_rss_kib'])} / {_mib(s['router_uss_kib'])} | "
            f"{_mib(s['redis_rss_kib'])} | {_mib(s['total_pss_kib'])} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--apps", nargs="+", choices=sorted(APPS), default=["kv", "reference"])
    parser.add_argument("--redis", default="auto")
    parser.add_argument(
        "--warm-requests", type=int, default=10, help="per worker, before memory is read"
    )
    parser.add_argument("--target-ms", type=float, default=2000.0, help="32 workers ready")
    parser.add_argument("--rounds", type=int, default=6, help="throughput rounds; 0: skip")
    parser.add_argument("--throughput-workers", type=int, default=16)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--clients", type=int, default=4, help="wrk processes")
    parser.add_argument("--connections", type=int, default=16, help="per wrk process")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.rounds and shutil.which("wrk") is None:
        print("wrk is not on PATH: apt-get install wrk (or --rounds 0)", file=sys.stderr)
        return 2
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    facts = limits()
    print(machine_line())
    print(f"command: {command}")
    print("limits: " + ", ".join(f"{k} {v}" for k, v in facts.items()), flush=True)
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        phase_clock() as marks,
        httpx.Client(timeout=10.0) as client,
    ):
        for rep in range(args.repeats):
            # Rotate the sizes' order so slow drifts in machine load spread over all.
            k = rep % len(args.sizes)
            sizes = args.sizes[k:] + args.sizes[:k]
            for name in args.apps:
                for n in sizes:
                    row = one_cluster(
                        APPS[name],
                        n,
                        redis=args.redis,
                        warm=args.warm_requests,
                        log_dir=Path(tmp) / f"{name}-{n}-{rep}",
                        marks=marks,
                        client=client,
                    )
                    rows.append(row)
                    workers = row["memory_kib"]["workers"]
                    print(
                        f"repeat {rep} {name:9} {n:2} workers: start {row['start_ms']:6.0f} ms"
                        f"  ready {row['ready_ms']:6.0f} ms  teardown {row['teardown_ms']:5.0f} ms"
                        f"  worker USS {_mib(_med([m['uss'] for m in workers]))} MiB"
                        f"  all gone {row['all_gone_ms']:5.0f} ms"
                        f"  alive after close {row['left_alive']}",
                        flush=True,
                    )
    summaries = summarize(rows, args.target_ms)
    print_tables(summaries)
    for s in summaries:
        if s["target_met"] is not None:
            verdict = "met" if s["target_met"] else "NOT met"
            print(
                f"target: 32 workers of {s['app']} ready in <= {args.target_ms:.0f} ms: {verdict} "
                f"(max {s['ready_max_ms']:.0f} ms, median {s['ready_median_ms']:.0f} ms)"
            )
    result: dict[str, Any] = {
        "machine": machine_line(),
        "command": command,
        "limits": facts,
        "config": vars(args) | {"json": str(args.json) if args.json else None},
        "rows": rows,
        "summaries": summaries,
    }
    if args.rounds:
        print(
            f"\nrouter throughput, {args.throughput_workers} workers vs 4 "
            f"({args.clients} wrk x {args.connections} connections, {args.duration:.0f} s runs)"
        )
        tp = throughput(args)
        result["throughput"] = tp
        print("\n| mode | median req/s | router CPU per request |")
        print("|---|---|---|")
        for name, rps in tp["median_rps"].items():
            router = tp["median_router_cpu_us_per_req"].get(name)
            cpu = f"{router:.1f} us" if router is not None else "-"
            print(f"| {name} | {rps:.0f} | {cpu} |")
        print(
            f"\nmedian routed-{tp['workers']} / routed-4: {tp['median_big_over_small']:.3f} "
            f"(CPU-cost ratio {tp['median_cpu_big_over_small']:.3f}); routed-{tp['workers']} / "
            f"direct: {tp['median_big_over_direct']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
