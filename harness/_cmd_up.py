"""``scanproof up``: start a cluster, print where it is, keep it up until Ctrl-C.

Prints the router URL, each worker's URL and pid, and the Redis URL (saying
which backend ``--redis auto`` picked), then waits. Ctrl-C (SIGINT) or SIGTERM
tears everything down and exits 0; a second signal during teardown is ignored
so teardown always finishes. If this process is killed outright (SIGKILL),
every process of the cluster still exits within a few seconds.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType

from harness._cli_options import add_cluster_options, parse_flags
from harness.errors import EXIT_PASS

HELP = "start a multi-worker cluster behind a per-request router; Ctrl-C stops it"


class _Stop(Exception):
    """Raised in the main thread by SIGTERM, like KeyboardInterrupt for SIGINT."""


def configure(parser: argparse.ArgumentParser) -> None:
    add_cluster_options(parser, redis_default="auto", start_method=True)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _Stop


def run(args: argparse.Namespace) -> int:
    from harness.cluster import Cluster

    signal.signal(signal.SIGTERM, _raise_stop)
    cluster = None
    try:
        flags = parse_flags(args.flag)
        cluster = Cluster.start(
            app=args.app,
            workers=4 if args.workers is None else args.workers,
            router=args.router,
            redis=args.redis,
            preset=args.preset,
            env={"REFIMPL_FLAGS": json.dumps(flags)} if flags else None,
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
