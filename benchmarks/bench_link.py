"""Redis link proxy benchmark: latency per command through a link vs straight to Redis.

Starts a redis-server (the harness's ``server`` backend) and the link process with
one link, then times sequential commands from one redis-py client straight to
Redis and from another through the link, in ``--rounds`` adjacent blocks whose
order alternates (direct first, then link first, ...), so the machine's load
changes hit both sides alike. Each block sends ``--commands`` commands one at a
time (``GET`` of a 100-byte value) and a 100-command pipeline ``--pipelines``
times. Reported: median and p99 per command for each side, the link/direct ratio
of the medians and the added microseconds.

Usage::

    python benchmarks/bench_link.py --rounds 6 --commands 2000
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import redis

from harness.cluster.link import Links
from harness.cluster.redis import make_client, open_backend


def _sequential(client: redis.Redis, n: int) -> list[float]:
    times = []
    for _ in range(n):
        begin = time.perf_counter_ns()
        client.get("bench:value")
        times.append((time.perf_counter_ns() - begin) / 1000.0)
    return times


def _pipelines(client: redis.Redis, n: int) -> list[float]:
    times = []
    for _ in range(n):
        pipe = client.pipeline(transaction=False)
        for _ in range(100):
            pipe.get("bench:value")
        begin = time.perf_counter_ns()
        pipe.execute()
        times.append((time.perf_counter_ns() - begin) / 1000.0 / 100)
    return times


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--pipelines", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-link-"))
    backend = open_backend("server", workdir=work)
    try:
        with Links.start(backend.url, workers=1, log=work / "links.log") as links:
            direct, linked = make_client(backend.url), make_client(links.urls[0])
            direct.set("bench:value", "x" * 100)
            sides = {"direct": direct, "link": linked}
            seq: dict[str, list[float]] = {"direct": [], "link": []}
            pipe: dict[str, list[float]] = {"direct": [], "link": []}
            for client in sides.values():  # warm-up: connections, caches
                _sequential(client, 200)
            for r in range(args.rounds):
                order = ["direct", "link"] if r % 2 == 0 else ["link", "direct"]
                for name in order:
                    seq[name] += _sequential(sides[name], args.commands)
                    pipe[name] += _pipelines(sides[name], args.pipelines)
    finally:
        backend.close()
    result: dict[str, object] = {"python": platform.python_version(), "rounds": args.rounds}
    for label, data in (("sequential", seq), ("pipelined_per_command", pipe)):
        med = {k: statistics.median(v) for k, v in data.items()}
        result[label] = {
            "direct_median_us": round(med["direct"], 1),
            "link_median_us": round(med["link"], 1),
            "direct_p99_us": round(_p(data["direct"], 0.99), 1),
            "link_p99_us": round(_p(data["link"], 0.99), 1),
            "ratio_median": round(med["link"] / med["direct"], 2),
            "added_median_us": round(med["link"] - med["direct"], 1),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
