"""Router benchmark: routed throughput as a fraction of direct-to-workers, and added latency.

Starts a real cluster (4 forked workers of ``benchmarks.apps.kv:app``, a cheap
Redis-backed GET, behind the round-robin router) and drives it with ``wrk``
(``apt-get install wrk``), the load generator running in its own processes:

- throughput: the same load (``--clients`` wrk processes, one thread and
  ``--connections`` connections each) sent straight to the workers (the
  ceiling: client ``k`` talks to worker ``k``) and then through the router
  (every client talks to the router), alternating, ``--rounds`` times; the
  result is the median of routed/direct ratios of adjacent runs;
- added latency: one connection, sequential requests, direct to worker 0 and
  through the router; the difference of wrk's median latencies.

Usage::

    python benchmarks/bench_router.py --rounds 5 --duration 5
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

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
    return (int(fields[11]) + int(fields[12])) / 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
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
        _wrk(direct_urls, args.connections, 2)  # warm-up: pools, caches, JIT-free but still
        _wrk(routed_urls, args.connections, 2)
        rounds = []
        for _ in range(args.rounds):
            d_rps, _ = _wrk(direct_urls, args.connections, args.duration)
            cpu0 = _cpu_seconds(cluster.router_pid)
            r_rps, _ = _wrk(routed_urls, args.connections, args.duration)
            router_us = (_cpu_seconds(cluster.router_pid) - cpu0) / (r_rps * args.duration) * 1e6
            rounds.append({"direct_rps": d_rps, "routed_rps": r_rps, "ratio": r_rps / d_rps,
                           "router_cpu_us_per_req": router_us})  # fmt: skip
            print(
                f"direct {d_rps:8.0f} req/s  routed {r_rps:8.0f} req/s  "
                f"ratio {r_rps / d_rps:.3f}  router CPU {router_us:.1f} us/req",
                flush=True,
            )
        lat_direct, lat_routed = [], []
        for _ in range(3):
            _, out = _wrk([direct[0]], 1, 3)
            lat_direct.append(_median_latency_ms(out[0]))
            _, out = _wrk([routed_urls[0]], 1, 3)
            lat_routed.append(_median_latency_ms(out[0]))
    result = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "config": vars(args) | {"json": str(args.json) if args.json else None},
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_latency_direct_ms": statistics.median(lat_direct),
        "median_latency_routed_ms": statistics.median(lat_routed),
    }
    added = result["median_latency_routed_ms"] - result["median_latency_direct_ms"]
    result["added_latency_ms"] = added
    print(
        f"median ratio {result['median_ratio']:.3f}; median latency direct "
        f"{result['median_latency_direct_ms']:.3f} ms, routed "
        f"{result['median_latency_routed_ms']:.3f} ms, added {added:.3f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
