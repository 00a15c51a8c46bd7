"""Router benchmark: routed throughput as a fraction of direct-to-workers, and added latency.

Starts a real cluster (4 forked workers of ``benchmarks.apps.kv:app``, a cheap
Redis-backed GET, behind the round-robin router) and drives it with ``wrk``
(``apt-get install wrk``), the load generator running in its own processes:

- throughput: the same load (``--clients`` wrk processes, one thread and
  ``--connections`` connections each) sent straight to the workers (the
  ceiling: client ``k`` talks to worker ``k``) and through the router (every
  client talks to the router), in ``--rounds`` adjacent pairs whose order
  alternates; the result is the median of the pairs' routed/direct ratios;
- CPU cost: CPU seconds per request of the whole cluster plus the load
  generator, direct vs routed. On a shared machine throughput swings with
  other tenants' load; CPU per request hardly does, and its ratio is what the
  throughput ratio would be on an otherwise idle machine;
- added latency: one connection, sequential requests, direct to worker 0 and
  through the router; the difference of wrk's median latencies.

Usage::

    python benchmarks/bench_router.py --rounds 5 --duration 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.cluster import Cluster

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_P50 = re.compile(r"50%\s+([\d.]+)(us|ms|s)")


def _wrk(urls: list[str], connections: int, duration: float) -> tuple[float, list[str]]:
    procs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    outputs = [p.communicate(timeout=duration + 30)[0] for p in procs]
    total = 0.0
    for out in outputs:
        match = _RPS.search(out)
        if match is None:
            raise SystemExit(f"could not read wrk output:\n{out}")
        total += float(match.group(1))
    return total, outputs


def _median_latency_ms(output: str) -> float:
    match = _P50.search(output)
    if match is None:
        raise SystemExit(f"no latency distribution in wrk output:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value if unit == "ms" else value * 1000


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _measured_run(
    cluster: Cluster, urls: list[str], connections: int, duration: float
) -> dict[str, float]:
    """Throughput, and CPU seconds per request of the cluster plus the load generator.

    CPU per request hardly depends on what else the machine runs, unlike
    throughput on a shared 2-core machine; ``other_busy`` is the CPU that
    neither used (other tenants), to show how disturbed a run was.
    """
    pids = [*cluster.pids()]
    own0 = sum(_cpu_seconds(p) for p in pids)
    wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = _machine_busy_seconds()
    rps, _ = _wrk(urls, connections, duration)
    busy = _machine_busy_seconds() - busy0
    wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = sum(_cpu_seconds(p) for p in pids) - own0
    load = (wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime)
    requests = rps * max(1, round(duration))
    return {
        "rps": rps,
        "cpu_us_per_req": (own + load) / requests * 1e6,
        "other_busy_s": max(0.0, busy - own - load),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="direct/routed pairs")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--clients", type=int, default=4, help="wrk processes")
    parser.add_argument("--connections", type=int, default=16, help="per wrk process")
    parser.add_argument("--redis", default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not on PATH: apt-get install wrk", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory() as tmp,
        Cluster.start(
            app="benchmarks.apps.kv:app", workers=4, redis=args.redis, workdir=Path(tmp)
        ) as cluster,
    ):
        client = cluster.redis.client()
        client.set("bench:key", "v")
        client.close()
        direct = [f"{w.url}/kv" for w in cluster.workers]
        direct_urls = [direct[k % len(direct)] for k in range(args.clients)]
        routed_urls = [f"{cluster.router_url}/kv"] * args.clients
        _wrk(direct_urls, args.connections, 2)  # warm-up: connection pools, caches
        _wrk(routed_urls, args.connections, 2)
        rounds = []
        for i in range(args.rounds):
            # Alternate which goes first so slow drifts in machine load cancel out.
            order = ("direct", "routed") if i % 2 == 0 else ("routed", "direct")
            runs = {}
            for kind in order:
                urls = direct_urls if kind == "direct" else routed_urls
                router_cpu0 = _cpu_seconds(cluster.router_pid)
                runs[kind] = _measured_run(cluster, urls, args.connections, args.duration)
                requests = runs[kind]["rps"] * max(1, round(args.duration))
                router_us = (_cpu_seconds(cluster.router_pid) - router_cpu0) / requests * 1e6
                runs[kind]["router_cpu_us_per_req"] = router_us
            d, r = runs["direct"], runs["routed"]
            row = {
                "direct_rps": d["rps"],
                "routed_rps": r["rps"],
                "ratio": r["rps"] / d["rps"],
                "cpu_ratio": d["cpu_us_per_req"] / r["cpu_us_per_req"],
                "direct_cpu_us_per_req": d["cpu_us_per_req"],
                "routed_cpu_us_per_req": r["cpu_us_per_req"],
                "router_cpu_us_per_req": r["router_cpu_us_per_req"],
                "other_busy_s": d["other_busy_s"] + r["other_busy_s"],
            }
            rounds.append(row)
            print(
                f"direct {d['rps']:6.0f} req/s  routed {r['rps']:6.0f} req/s  "
                f"ratio {row['ratio']:.3f}  CPU/req {d['cpu_us_per_req']:5.0f} vs "
                f"{r['cpu_us_per_req']:5.0f} us (ratio {row['cpu_ratio']:.3f}), "
                f"router {row['router_cpu_us_per_req']:4.1f} us; "
                f"other tenants {row['other_busy_s']:.1f} CPU-s",
                flush=True,
            )
        lat_direct, lat_routed = [], []
        for _ in range(3):
            _, out = _wrk([direct[0]], 1, 3)
            lat_direct.append(_median_latency_ms(out[0]))
            _, out = _wrk([routed_urls[0]], 1, 3)
            lat_routed.append(_median_latency_ms(out[0]))
    result: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "config": vars(args) | {"json": str(args.json) if args.json else None},
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
        "median_router_cpu_us_per_req": statistics.median(
            r["router_cpu_us_per_req"] for r in rounds
        ),
        "median_latency_direct_ms": statistics.median(lat_direct),
        "median_latency_routed_ms": statistics.median(lat_routed),
    }
    added = statistics.median(lat_routed) - statistics.median(lat_direct)
    result["added_latency_ms"] = added
    print(
        f"median throughput ratio {result['median_ratio']:.3f}; median CPU-cost ratio "
        f"{result['median_cpu_ratio']:.3f}; router {result['median_router_cpu_us_per_req']:.1f} "
        f"us/req; median latency direct {result['median_latency_direct_ms']:.3f} ms, routed "
        f"{result['median_latency_routed_ms']:.3f} ms, added {added:.3f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
