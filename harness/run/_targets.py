"""A run against a running deployment (``--target URL``): the checks made before
anything is sent, the load bound and keep-alive it runs with, the line printed
before it starts, and how its answers name the worker that served them.

Private to :mod:`harness.run.runner`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import httpx

from harness.cluster.deployment import check_target_url
from harness.errors import UsageError
from harness.faults.hooks import check_hooks
from harness.faults.nemesis import check_schedule
from harness.history.outcomes import WORKER_HEADER, header_value
from harness.run.scenario import LINK_FAULTS

if TYPE_CHECKING:
    from harness.run.runner import RunOptions

#: The bound on requests per second of a --target run when --max-rps is not given: a
#: deployment may be shared (staging), so scanproof never sends more unless told to.
DEFAULT_TARGET_RPS: Final = 50.0
_REDIS_FAULTS: Final = frozenset(
    {"delete_keys", "expire_keys", "evict", "flush", "redis_restart", "redis_stall", "redis_pause"}
)

# How answers name the worker that served them (run.json, the report's setup).
BY_HEADER: Final = "header"
BY_TARGET: Final = "target URL"
UNKNOWN: Final = "unknown"


def redis_spec(options: RunOptions) -> str | None:
    """The deployment's Redis: the ``--redis URL`` given, or None (the CLI's default
    ``embedded`` means none was given: scanproof starts no Redis for a deployment)."""
    spec = options.redis
    if spec.startswith(("redis://", "rediss://")):
        return spec
    if spec == "embedded":
        return None
    raise UsageError(
        f"--redis {spec}: with --target give the deployment's own Redis as "
        "--redis redis://HOST:PORT/DB (scanproof starts no Redis for a deployment)"
    )


def check_target_options(options: RunOptions) -> None:
    """Refuse, before anything runs or is sent, what a --target run cannot do; one line."""
    if options.cmd is not None:
        raise UsageError(
            "--cmd and --target: --cmd starts workers, --target tests running ones; pass one"
        )
    if options.preset is not None or options.flags:
        flag = "--preset" if options.preset is not None else "--flag"
        raise UsageError(
            f"{flag} with --target: presets and flags configure workers scanproof starts; "
            "configure your deployment itself and drop the option"
        )
    for url in options.targets:
        check_target_url(url)
    faults = [f.fault for f in options.scenario.faults]
    links = sorted({f for f in faults if f in LINK_FAULTS})
    if links:
        raise UsageError(
            f"fault {links[0]!r} needs scanproof's own workers (a proxy per worker); "
            "it cannot run with --target: drop it from the scenario"
        )
    spec = redis_spec(options)
    on_redis = [f for f in faults if f in _REDIS_FAULTS]
    if on_redis and spec is None:
        raise UsageError(
            f"fault {on_redis[0]!r} needs the deployment's Redis: pass --redis "
            "redis://HOST:PORT/DB (and --allow-destructive / --allow-remote-faults as needed)"
        )
    if spec is not None:
        check_schedule(
            options.scenario.faults,
            spec,
            allow_destructive=options.allow_destructive,
            allow_remote_faults=options.allow_remote_faults,
        )
    check_hooks(options.contract.hooks, faults)


def check_load_options(options: RunOptions) -> None:
    """Refuse a bad ``--max-rps`` or one the driver cannot keep (any run); one line."""
    if options.max_rps is None:
        return
    if not (math.isfinite(options.max_rps) and options.max_rps > 0):
        raise UsageError(f"--max-rps {options.max_rps}: must be a number of requests/s > 0")
    if options.driver == "locust":
        raise UsageError(
            "--driver locust --max-rps: locust paces itself by --users; drop --max-rps or "
            "use --driver scripted"
        )


def max_rps(options: RunOptions) -> float | None:
    """The bound on requests per second: ``--max-rps``, else
    :data:`DEFAULT_TARGET_RPS` for a scripted --target run, else none."""
    if options.max_rps is not None:
        return options.max_rps
    if options.targets and options.driver == "scripted":
        return DEFAULT_TARGET_RPS
    return None


def keep_alive(options: RunOptions) -> bool:
    """Keep connections alive? ``--keep-alive/--no-keep-alive``, else off for one
    --target (its own balancer balances connections: a kept-alive one pins its
    requests to one worker) and on otherwise (scanproof's router picks per request)."""
    if options.keep_alive is not None:
        return options.keep_alive
    return len(options.targets) != 1


def announcement(options: RunOptions, *, duration_s: float | None) -> str:
    """The line printed before a --target run sends anything."""
    rps = max_rps(options)
    bound = (
        f"at most {rps:g} requests/s"
        + (" (--max-rps)" if options.max_rps is not None else " (default; --max-rps to change)")
        if rps is not None
        else f"unbounded rate (locust, {options.users} users)"
    )
    length = (
        f"{duration_s:g} s active phase" if duration_s is not None else "the scenario's duration"
    )
    connections = "keep-alive" if keep_alive(options) else "a new connection per request"
    return (
        f"target {', '.join(options.targets)}: {bound}, {length} (plus calibration and "
        f"linger), {connections}"
    )


def worker_attribution(base_url: str, path: str, header: str, *, routed: bool) -> str:
    """How answers will name their worker: the contract's ``worker_header`` when the
    deployment sends it (one GET of ``path``), else the target URL (scanproof's router
    with several targets), else unknown."""
    try:
        answer = httpx.get(base_url + (path or "/"), timeout=5.0)
        headers: httpx.Headers | None = answer.headers
    except httpx.HTTPError:
        headers = None
    sent = header_value(headers, header)
    own = header.lower() != WORKER_HEADER
    if sent is not None and sent.strip().isdigit() and (own or not routed):
        return BY_HEADER
    if routed:
        return BY_TARGET
    return UNKNOWN


def attribution_note(mode: str) -> str:
    """The report's line for an attribution mode."""
    if mode == UNKNOWN:
        return "unknown (set worker_header in the contract to a header naming the worker)"
    if mode == BY_TARGET:
        return "per target URL (scanproof's router)"
    return "from the contract's worker_header"


__all__ = [
    "DEFAULT_TARGET_RPS",
    "announcement",
    "attribution_note",
    "check_load_options",
    "check_target_options",
    "keep_alive",
    "max_rps",
    "redis_spec",
    "worker_attribution",
]
