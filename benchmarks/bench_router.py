"""Router benchmark: direct vs the scanproof router vs HAProxy: throughput, CPU cost, latency.

Starts a real cluster (``--workers`` forked workers, default 4, of
``benchmarks.apps.kv:app``, a cheap Redis-backed GET, behind the round-robin
router) and drives it with ``wrk``,
the load generator running in its own processes. Three modes, side by side:

- ``direct``: wrk process ``k`` talks straight to worker ``k`` (the ceiling);
- ``routed``: every wrk process talks to the scanproof router;
- ``haproxy``: every wrk process talks to an HAProxy that the benchmark starts
  itself (a generated config in a temp dir, a free loopback port, in the
  foreground with ``-db``; killed at the end) in front of the same workers, over
  the same Unix sockets the router uses (``--haproxy-upstream tcp``: their
  loopback ports). It balances every request, not every connection: ``balance
  roundrobin``, keep-alive on both sides (``option http-keep-alive``, the
  default, stated), ``no option prefer-last-server`` and ``http-reuse always``
  (idle worker connections shared between client connections, like the
  router's pools), and it adds the router's attribution header,
  ``X-Scanproof-Worker: <worker index>`` (``http-response set-header`` with the
  server's name, which is the index). Before measuring, 40 sequential requests
  on one keep-alive connection through each proxy must come back from workers
  0, 1, 2, 3, 0, ... in turn (same socket, no two consecutive answers from
  one worker, ten from each); the counts are printed.

What is measured:

- throughput: the same load (``--clients`` wrk processes, one thread and
  ``--connections`` connections each) in every mode, ``--rounds`` rounds of
  adjacent runs whose order rotates each round; each ratio (routed/direct,
  haproxy/direct, routed/haproxy) is the median of the rounds' ratios;
- CPU cost: CPU seconds per request of the whole cluster, HAProxy and the load
  generator. On a shared machine throughput swings with other tenants' load;
  CPU per request hardly does, and the CPU-cost ratio (direct's CPU per
  request over the mode's) is what the throughput ratio would be on an
  otherwise idle machine; the proxy's own CPU per request is shown apart;
- added latency: one connection, sequential requests, ``--latency-reps`` runs
  of ``--latency-duration`` s per mode in rotating order; wrk's p50 and p99, median over the runs,
  minus direct's. (p50/p99 under the full load are in the JSON.)

Target (issue 14): the router >= 0.95 of direct, and not below HAProxy.

Needs ``wrk`` and ``haproxy`` on PATH; on Debian/Ubuntu::

    apt-get install -y wrk haproxy
    service haproxy stop; update-rc.d haproxy disable   # if the package started one

HAProxy is never a test dependency; without it, ``--modes direct,routed``
measures the other two.

Usage::

    python benchmarks/bench_router.py --rounds 9 --duration 4 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import machine_line

from harness.cluster import Cluster

MODES = ("direct", "routed", "haproxy")
HEADER = "X-Scanproof-Worker"  # what the router adds (harness/cluster/router/_pool.py)

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_PCT = {p: re.compile(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", re.M) for p in (50, 99)}
_INSTALL = "apt-get install -y haproxy"


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


def _latency_ms(output: str, percentile: int) -> float:
    match = _PCT[percentile].search(output)
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
    pids: list[int], proxy_pid: int | None, urls: list[str], connections: int, duration: float
) -> dict[str, float]:
    """Throughput, CPU seconds per request of ``pids`` plus the load generator, latency.

    CPU per request hardly depends on what else the machine runs, unlike
    throughput on a shared 2-core machine; ``other_busy`` is the CPU that
    neither used (other tenants), to show how disturbed a run was.
    """
    own0 = sum(_cpu_seconds(p) for p in pids)
    proxy0 = _cpu_seconds(proxy_pid) if proxy_pid is not None else 0.0
    wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = _machine_busy_seconds()
    rps, outputs = _wrk(urls, connections, duration)
    busy = _machine_busy_seconds() - busy0
    wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = sum(_cpu_seconds(p) for p in pids) - own0
    proxy = _cpu_seconds(proxy_pid) - proxy0 if proxy_pid is not None else 0.0
    load = (wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime)
    requests = rps * max(1, round(duration))
    return {
        "rps": rps,
        "cpu_us_per_req": (own + load) / requests * 1e6,
        "proxy_cpu_us_per_req": proxy / requests * 1e6,
        "other_busy_s": max(0.0, busy - own - load),
        "loaded_p50_ms": statistics.median(_latency_ms(o, 50) for o in outputs),
        "loaded_p99_ms": statistics.median(_latency_ms(o, 99) for o in outputs),
    }


def _haproxy_config(port: int, servers: Sequence[str], threads: int) -> str:
    """Per-request round-robin over ``servers`` (server ``i`` is worker ``i``), the header."""
    return "\n".join(
        [
            "global",
            f"    nbthread {threads}",
            "    maxconn 8192",
            "defaults",
            "    mode http",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    timeout http-keep-alive 60s",
            # Keep-alive on both sides (HAProxy's default, stated); every request is
            # balanced on its own: no stickiness to the last server of a connection,
            # and idle worker connections are shared between client connections.
            "    option http-keep-alive",
            "    no option prefer-last-server",
            "    http-reuse always",
            "frontend bench",
            f"    bind {LOOPBACK}:{port}",
            "    default_backend workers",
            "backend workers",
            "    balance roundrobin",
            f"    http-response set-header {HEADER} %[srv_name]",
            *(f"    server {i} {address}" for i, address in enumerate(servers)),
            "",
        ]
    )


LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port free now (haproxy binds it a moment later; a benchmark may retry)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def _haproxy(servers: Sequence[str], threads: int, workdir: Path) -> Iterator[tuple[str, int]]:
    """Run HAProxy in the foreground before the workers; yield (url, pid); kill it after."""
    port = free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(_haproxy_config(port, servers, threads))
    log = workdir / "haproxy.log"
    with log.open("wb") as out:  # its own session, so that killing its group ends it all
        proc = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"haproxy exited with {proc.returncode}:\n{tail(log)}")
            with socket.socket() as sock:
                if sock.connect_ex((LOOPBACK, port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"haproxy did not listen on port {port} in 10 s:\n{tail(log)}")
            time.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}", proc.pid
    finally:
        _kill_group(proc, grace=1.0)


def _attribution(base_url: str, path: str, requests: int = 40) -> list[str]:
    """The header of ``requests`` sequential requests on one keep-alive connection."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or LOOPBACK, parts.port, timeout=10)
    values = []
    first_socket = None
    try:
        for _ in range(requests):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if first_socket is None:
                first_socket = conn.sock
            elif conn.sock is not first_socket:
                raise SystemExit(f"{base_url}: the connection was not kept alive")
            values.append(response.getheader(HEADER, "<none>"))
    finally:
        conn.close()
    return values


def _check_attribution(mode: str, values: list[str], workers: int) -> str:
    counts = Counter(values)
    expected = {str(i) for i in range(workers)}
    per_request = all(a != b for a, b in itertools.pairwise(values))
    if set(counts) != expected or len(set(counts.values())) != 1 or not per_request:
        raise SystemExit(
            f"{mode}: {HEADER} on one keep-alive connection is not per-request round-robin "
            f"over workers 0-{workers - 1}: {' '.join(values)}"
        )
    shown = ", ".join(f"{k}: {counts[k]}" for k in sorted(counts))
    return f"{mode}: {' '.join(values[:8])} ... ({shown})"


def _tool_versions(modes: Sequence[str]) -> str:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    found = [wrk.stdout.split(" [", 1)[0].strip() or "wrk ?"]
    if "haproxy" in modes:
        ha = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False)
        found.append(ha.stdout.split(" - ", 1)[0].strip())
    return ", ".join(found)


def _med(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def _span(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of one run per mode")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (1-64)")
    parser.add_argument("--clients", type=int, default=4, help="wrk processes")
    parser.add_argument("--connections", type=int, default=16, help="per wrk process")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma-separated, from direct,routed,haproxy; direct is always measured",
    )
    parser.add_argument("--haproxy-threads", type=int, default=1, help="HAProxy nbthread")
    parser.add_argument(
        "--haproxy-upstream",
        choices=("unix", "tcp"),
        default="unix",
        help="how HAProxy reaches the workers (the router uses their Unix sockets)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per mode, unmeasured")
    parser.add_argument("--latency-reps", type=int, default=3, help="latency runs per mode")
    parser.add_argument(
        "--latency-duration", type=float, default=3.0, help="seconds per latency run"
    )
    parser.add_argument("--redis", default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    wanted = {m.strip() for m in args.modes.split(",") if m.strip()} | {"direct"}
    if not wanted <= set(MODES):
        parser.error(f"--modes: unknown {', '.join(sorted(wanted - set(MODES)))}")
    modes = [m for m in MODES if m in wanted]
    if shutil.which("wrk") is None:
        print("wrk is not on PATH: apt-get install -y wrk", file=sys.stderr)
        return 2
    if "haproxy" in modes and shutil.which("haproxy") is None:
        print(
            f"haproxy is not on PATH: install it with `{_INSTALL}` "
            "(then `service haproxy stop` if it started one), "
            "or pass --modes direct,routed to measure without it",
            file=sys.stderr,
        )
        return 2
    print(machine_line())
    print(f"tools: {_tool_versions(modes)}")
    print(f"command: {shlex.join(['python', *sys.argv])}", flush=True)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cluster = stack.enter_context(
            Cluster.start(
                app="benchmarks.apps.kv:app",
                workers=args.workers,
                redis=args.redis,
                workdir=tmp,
                log_dir=tmp / "logs",
            )
        )
        client = cluster.redis.client()
        client.set("bench:key", "v")
        client.close()
        workers = cluster.workers
        bases = {"routed": cluster.router_url}
        proxy_pids: dict[str, int] = {"routed": cluster.router_pid}
        extra_pids: list[int] = []
        if "haproxy" in modes:
            if args.haproxy_upstream == "unix":
                unix_paths = getattr(cluster.supervisor, "unix_paths", None)
                if unix_paths is None:
                    raise SystemExit("these workers have no Unix sockets: --haproxy-upstream tcp")
                servers = [f"unix@{p}" for p in unix_paths]
            else:
                servers = [f"{LOOPBACK}:{w.port}" for w in workers]
            ha_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-haproxy-")))
            bases["haproxy"], proxy_pids["haproxy"] = stack.enter_context(
                _haproxy(servers, args.haproxy_threads, ha_dir)
            )
            extra_pids.append(proxy_pids["haproxy"])
        direct = [f"{w.url}/kv" for w in workers]
        urls = {"direct": [direct[k % len(direct)] for k in range(args.clients)]}
        for mode, base in bases.items():
            urls[mode] = [f"{base}/kv"] * args.clients
        print(f"per-request balancing, {HEADER} on one keep-alive connection:")
        attribution = {}
        for mode in modes[1:]:
            values = _attribution(bases[mode], "/kv", requests=10 * len(workers))
            attribution[mode] = values
            print("  " + _check_attribution(mode, values, len(workers)), flush=True)
        for mode in modes:  # warm-up: connection pools, caches
            _wrk(urls[mode], args.connections, args.warmup)
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        rounds: list[dict[str, Any]] = []
        for i in range(args.rounds):
            # Rotate which goes first so slow drifts in machine load cancel out.
            order = modes[i % len(modes) :] + modes[: i % len(modes)]
            this: dict[str, dict[str, float]] = {}
            for mode in order:
                pids = [*cluster.pids(), *extra_pids]
                this[mode] = _measured_run(
                    pids, proxy_pids.get(mode), urls[mode], args.connections, args.duration
                )
                runs[mode].append(this[mode])
            d = this["direct"]
            row: dict[str, Any] = {"order": order, **{f"{m}_rps": this[m]["rps"] for m in modes}}
            for m in modes[1:]:
                row[f"{m}_ratio"] = this[m]["rps"] / d["rps"]
                row[f"{m}_cpu_ratio"] = d["cpu_us_per_req"] / this[m]["cpu_us_per_req"]
            if "haproxy" in modes and "routed" in modes:
                row["routed_vs_haproxy"] = this["routed"]["rps"] / this["haproxy"]["rps"]
                row["routed_vs_haproxy_cpu"] = (
                    this["haproxy"]["cpu_us_per_req"] / this["routed"]["cpu_us_per_req"]
                )
            row["other_busy_s"] = sum(r["other_busy_s"] for r in this.values())
            for m in modes:
                row[f"{m}_cpu_us_per_req"] = this[m]["cpu_us_per_req"]
                row[f"{m}_proxy_cpu_us_per_req"] = this[m]["proxy_cpu_us_per_req"]
            rounds.append(row)
            parts = [
                f"{m} {this[m]['rps']:6.0f} req/s {this[m]['cpu_us_per_req']:4.0f} us/req"
                + (f" (x{row[f'{m}_ratio']:.3f})" if m != "direct" else "")
                for m in order
            ]
            print(
                f"round {i + 1}: {'; '.join(parts)}; other tenants {row['other_busy_s']:.1f} CPU-s",
                flush=True,
            )
        latency: dict[str, dict[int, list[float]]] = {m: {50: [], 99: []} for m in modes}
        lat_urls = {"direct": direct[0], **{m: urls[m][0] for m in modes[1:]}}
        for i in range(args.latency_reps):
            for mode in modes[i % len(modes) :] + modes[: i % len(modes)]:
                _, out = _wrk([lat_urls[mode]], 1, args.latency_duration)
                for p in (50, 99):
                    latency[mode][p].append(_latency_ms(out[0], p))
    lat = {m: {p: statistics.median(v) for p, v in latency[m].items()} for m in modes}
    summary: dict[str, dict[str, float]] = {}
    for m in modes:
        summary[m] = {
            "median_rps": _med(runs[m], "rps"),
            "median_cpu_us_per_req": _med(runs[m], "cpu_us_per_req"),
            "median_proxy_cpu_us_per_req": _med(runs[m], "proxy_cpu_us_per_req"),
            "median_loaded_p50_ms": _med(runs[m], "loaded_p50_ms"),
            "median_loaded_p99_ms": _med(runs[m], "loaded_p99_ms"),
            "latency_p50_ms": lat[m][50],
            "latency_p99_ms": lat[m][99],
            "added_p50_ms": lat[m][50] - lat["direct"][50],
            "added_p99_ms": lat[m][99] - lat["direct"][99],
        }
        if m != "direct":
            summary[m]["median_ratio"] = _med(rounds, f"{m}_ratio")
            summary[m]["median_cpu_ratio"] = _med(rounds, f"{m}_cpu_ratio")
    print()
    print(
        "| mode | req/s | vs direct (range) | CPU-cost ratio | CPU/req | proxy CPU/req "
        "| p50 | p99 | added p50 | added p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in modes:
        s = summary[m]
        vs = _span(rounds, f"{m}_ratio") if m != "direct" else "1"
        cpu = f"{s['median_cpu_ratio']:.3f}" if m != "direct" else "1"
        proxy = f"{s['median_proxy_cpu_us_per_req']:.1f} µs" if m != "direct" else "-"
        print(
            f"| {m} | {s['median_rps']:.0f} | {vs} | {cpu} | {s['median_cpu_us_per_req']:.0f} µs "
            f"| {proxy} | {s['latency_p50_ms']:.3f} ms | {s['latency_p99_ms']:.3f} ms "
            f"| {s['added_p50_ms']:+.3f} ms | {s['added_p99_ms']:+.3f} ms |"
        )
    result: dict[str, Any] = {
        "machine": machine_line().removeprefix("machine: "),
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "tools": _tool_versions(modes),
        "command": shlex.join(["python", *sys.argv]),
        "config": vars(args) | {"json": str(args.json) if args.json else None},
        "attribution": attribution,
        "rounds": rounds,
        "modes": summary,
    }
    if "routed" in modes:  # the keys of the two-mode version of this benchmark
        result |= {
            "median_ratio": summary["routed"]["median_ratio"],
            "median_cpu_ratio": summary["routed"]["median_cpu_ratio"],
            "median_router_cpu_us_per_req": summary["routed"]["median_proxy_cpu_us_per_req"],
            "median_latency_direct_ms": lat["direct"][50],
            "median_latency_routed_ms": lat["routed"][50],
            "added_latency_ms": summary["routed"]["added_p50_ms"],
        }
        verdict = [f"router/direct {summary['routed']['median_ratio']:.3f} (target >= 0.95)"]
        met = summary["routed"]["median_ratio"] >= 0.95
        if "haproxy" in modes:
            vs_ha = _med(rounds, "routed_vs_haproxy")
            vs_ha_cpu = _med(rounds, "routed_vs_haproxy_cpu")
            result |= {"median_routed_vs_haproxy": vs_ha, "median_routed_vs_haproxy_cpu": vs_ha_cpu}
            verdict.append(
                f"router/haproxy {_span(rounds, 'routed_vs_haproxy')} (target >= 1), "
                f"CPU-cost {vs_ha_cpu:.3f}"
            )
            met = met and vs_ha >= 1.0
        result["target_met"] = met
        print(f"\n{'; '.join(verdict)}: target {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
