"""``scanproof up``: start a cluster, print where it is, keep it up until Ctrl-C.

Prints the router URL, each worker's URL and pid, and the Redis URL (saying
which backend ``--redis auto`` picked), then waits. Ctrl-C (SIGINT) or SIGTERM
tears everything down and exits 0; a second signal during teardown is ignored
so teardown always finishes. If this process is killed outright (SIGKILL),
every process of the cluster still exits within a few seconds.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from harness.cluster import DEFAULT_APP
from harness.errors import EXIT_PASS
from harness.router import POLICIES

HELP = "start a multi-worker cluster behind a per-request router; Ctrl-C stops it"


class _Stop(Exception):
    """Raised in the main thread by SIGTERM, like KeyboardInterrupt for SIGINT."""


def configure(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--app",
        default=env("SCANPROOF_APP", DEFAULT_APP),
        help=f"ASGI app as MODULE:ATTR, importable from here (default {DEFAULT_APP})",
    )
    parser.add_argument(
        "--preset",
        default=env("SCANPROOF_PRESET"),
        help="reference service preset, passed as REFIMPL_PRESET (pre-fix, claimed-fix, ...)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        # A string default goes through type=int only when `up` runs, so a bad
        # SCANPROOF_WORKERS cannot break the other verbs.
        default=env("SCANPROOF_WORKERS", "4"),
        help="worker processes (default 4)",
    )
    parser.add_argument(
        "--router",
        default=env("SCANPROOF_ROUTER", "round-robin"),
        help=f"routing policy: {', '.join(POLICIES)} (default round-robin)",
    )
    parser.add_argument(
        "--redis",
        default=env("SCANPROOF_REDIS", "auto"),
        help="auto | embedded | server | redis://HOST:PORT/DB (default auto)",
    )
    parser.add_argument(
        "--start-method",
        choices=("fork", "spawn"),
        default=env("SCANPROOF_START_METHOD", "fork"),
        help="fork workers from a preloaded parent (default) or spawn each fresh "
        "(for apps that are not fork-safe)",
    )
    parser.add_argument(
        "--allow-destructive",
        action="store_true",
        help="allow flush/eviction/config changes on an external --redis URL",
    )
    parser.add_argument(
        "--allow-remote-faults",
        action="store_true",
        help="allow fault injection on a non-loopback --redis host",
    )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _Stop


def run(args: argparse.Namespace) -> int:
    from harness.cluster import Cluster

    signal.signal(signal.SIGTERM, _raise_stop)
    cluster = None
    try:
        cluster = Cluster.start(
            app=args.app,
            workers=args.workers,
            router=args.router,
            redis=args.redis,
            preset=args.preset,
            start_method=args.start_method,
            allow_destructive=args.allow_destructive,
            allow_remote_faults=args.allow_remote_faults,
        )
        print(f"redis   {cluster.redis_url}  ({cluster.redis.name}; {cluster.redis.note})")
        for worker in cluster.workers:
            print(f"worker  {worker.index}  {worker.url}  pid {worker.pid}")
        print(f"router  {cluster.router_url}  ({args.router}, pid {cluster.router_pid})")
        print(f"scanproof up: {args.app} ready; Ctrl-C to stop", flush=True)
        while True:
            signal.pause()
    except (KeyboardInterrupt, _Stop):
        print("scanproof up: stopping", file=sys.stderr, flush=True)
    finally:
        # A second Ctrl-C must not cut teardown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster is not None:
            cluster.close()
    return EXIT_PASS
