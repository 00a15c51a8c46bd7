"""``scanproof up``: start a cluster, print where it is, keep it up until Ctrl-C.

Prints the router URL, each worker's URL and pid, each job worker's pid and log
(``--job-workers``), and the Redis URL (saying
which backend ``--redis auto`` picked), then waits. Ctrl-C (SIGINT) or SIGTERM
tears everything down and exits 0; a second signal during teardown is ignored
so teardown always finishes. If this process is killed outright (SIGKILL),
every process of the cluster still exits within a few seconds.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from harness.cli._options import add_cluster_options, check_target_args, start_cluster
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

    flags = check_target_args(args)  # before anything starts: a bad value is exit 2
    signal.signal(signal.SIGTERM, _raise_stop)
    cluster = None
    try:
        cluster = start_cluster(args, flags, start_method=args.start_method)
        print(f"redis   {cluster.redis_url}  ({cluster.redis.name}; {cluster.redis.note})")
        for worker in cluster.workers:
            print(f"worker  {worker.index}  {worker.url}  pid {worker.pid}")
        if cluster.job_workers is not None:
            for job in cluster.job_workers.workers:
                log = cluster.job_workers.log_path(job.index)
                print(f"job     {job.index}  pid {job.pid}  log {log}")
        print(f"router  {cluster.router_url}  ({args.router}, pid {cluster.router_pid})")
        target = f"--cmd {args.cmd!r}" if args.cmd else args.app
        print(f"scanproof up: {target} ready; Ctrl-C to stop", flush=True)
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
