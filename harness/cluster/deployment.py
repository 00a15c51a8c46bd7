"""A running deployment by URL: what ``scanproof run --target URL`` tests instead of a
cluster it starts. Nothing is started but what the user asks for.

It has the surface of :class:`~harness.cluster.Cluster` that the runner and the
nemesis use: ``router_url`` (one target: that URL itself, no router; several:
scanproof's router, started with those upstreams, rotating per request, its
``X-Scanproof-Worker`` naming the target), ``redis`` (``--redis URL`` as an external
backend with the usual opt-ins, else a backend that takes no fault), ``workers``
(one per target), and ``kill/pause/resume/restart/deploy``, which run the user's
hooks (:mod:`harness.faults.hooks`).

>>> with Deployment.start(["http://127.0.0.1:8000"]) as deployment:  # doctest: +SKIP
...     print(deployment.router_url, deployment.redis.name)
http://127.0.0.1:8000 none
>>> check_target_url("https://staging.example.com")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
harness.errors.UsageError: --target https://staging.example.com: only http:// URLs ...
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

from harness.cluster._proc import is_alive
from harness.cluster.redis import RedisBackend, open_backend
from harness.cluster.router import Router
from harness.cluster.supervisor import RestartRecord, WorkerInfo
from harness.errors import InfrastructureError, UsageError
from harness.faults.hooks import (
    HookResult,
    Hooks,
    read_probe,
    run_hook,
    wait_probe_change,
)

NO_REDIS: Final = "none"


class NoRedis(RedisBackend):
    """The Redis of a deployment run without ``--redis URL``: unknown to scanproof, so
    it takes no fault (a Redis fault is refused before the run, naming ``--redis URL``)."""

    name = NO_REDIS

    def __init__(self) -> None:
        super().__init__("", note="the deployment's own Redis (not given: --redis URL)")

    def ping(self) -> bool:
        return True  # nothing of ours to heal


def check_target_url(url: str) -> str:
    """``url`` without a trailing slash, or one UsageError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise UsageError(
            f"--target {url}: only http:// URLs are supported; give http://HOST:PORT "
            "(put TLS in front of scanproof's client, not in it)"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or port == 0:
        raise UsageError(f"--target {url}: expected http://HOST[:PORT], e.g. http://127.0.0.1:8000")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(
            f"--target {url}: a path is not supported; give http://HOST:PORT and put any "
            "prefix in the contract's paths"
        )
    return f"http://{parts.netloc}"


def _upstream(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 80}"


@dataclass
class _Faults:
    """Per-target state the hooks leave behind: paused, and what each hook printed."""

    stopped: set[int] = field(default_factory=set)
    results: list[HookResult] = field(default_factory=list)


class Deployment:
    """A running deployment; build it with :meth:`start`, use it as a context manager."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        redis: RedisBackend,
        router: Router | None,
        hooks: Hooks,
        workers: int = 0,
    ) -> None:
        self.targets = tuple(targets)
        #: worker slots the plan and the hooks' {worker} address (>= one per target)
        self.slots = max(workers, len(self.targets))
        self.redis = redis
        self.router = router
        self.hooks = hooks
        self.links = None  # link faults need scanproof's own workers
        self._faults = _Faults()
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls,
        targets: Sequence[str],
        *,
        redis: str | None = None,
        hooks: Hooks | None = None,
        workers: int = 0,
        allow_destructive: bool = False,
        allow_remote_faults: bool = False,
        workdir: Path | None = None,
        log_dir: Path | None = None,
    ) -> Deployment:
        """Check the URLs, open ``--redis URL`` (when given) and, for several targets,
        start scanproof's router in front of them; nothing else is started.

        ``workers``: how many workers the deployment has, as the hooks' ``{worker}``
        counts them (default: one per target); worker ``i`` is at target ``i % len``."""
        if not targets:
            raise UsageError("--target: give at least one URL, e.g. --target http://HOST:PORT")
        urls = [check_target_url(u) for u in targets]
        if redis is not None and not redis.startswith(("redis://", "rediss://")):
            raise UsageError(
                f"--redis {redis}: with --target give the deployment's own Redis as "
                "--redis redis://HOST:PORT/DB (scanproof starts no Redis for a deployment)"
            )
        backend: RedisBackend = (
            NoRedis()
            if redis is None
            else open_backend(
                redis,
                allow_destructive=allow_destructive,
                allow_remote_faults=allow_remote_faults,
            )
        )
        router: Router | None = None
        if len(urls) > 1:
            try:
                router = Router.start(
                    [_upstream(u) for u in urls],
                    workdir=workdir,
                    log=None if log_dir is None else log_dir / "router.log",
                )
            except BaseException:
                backend.close()
                raise
        return cls(urls, redis=backend, router=router, hooks=hooks or Hooks(), workers=workers)

    # ---------------------------------------------------------------- addresses
    @property
    def router_url(self) -> str:
        """Where clients send: the one target itself, or scanproof's router."""
        return self.router.url if self.router is not None else self.targets[0]

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def workers(self) -> tuple[WorkerInfo, ...]:
        """One per worker slot (pid 0: not ours), at its target's URL; ``stopped``
        while a pause hook holds it."""
        return tuple(
            WorkerInfo(
                index=i,
                url=self._url(i),
                port=urlsplit(self._url(i)).port or 80,
                pid=0,
                alive=True,
                stopped=i in self._faults.stopped,
            )
            for i in range(self.slots)
        )

    @property
    def restarts(self) -> list[RestartRecord]:
        """Measured restarts: none (a hook's time is in its fault's evidence)."""
        return []

    @property
    def hook_results(self) -> tuple[HookResult, ...]:
        """Every hook run so far, in order."""
        return tuple(self._faults.results)

    def pids(self) -> list[int]:
        """Processes scanproof started: the router (several targets), else none."""
        pids = [self.router.pid] if self.router is not None else []
        return [p for p in pids + self.redis.pids() if is_alive(p)]

    # ------------------------------------------------------------------- hooks
    def _url(self, index: int) -> str:
        return self.targets[index % len(self.targets)] if index >= 0 else self.targets[0]

    def fire(self, name: str, index: int) -> HookResult:
        """Run hook ``name`` for worker ``index`` (-1: the whole deployment) and keep its
        result; a hook that is not set is a failed result, never an exception."""
        if not self.hooks.command(name):
            result = HookResult(name, "", 127, f"no {name} hook in the contract's [hooks]", 0.0)
        else:
            command = self.hooks.render(name, worker=index, url=self._url(index))
            result = run_hook(name, command, timeout_s=self.hooks.timeout_s)
        with self._lock:
            self._faults.results.append(result)
            if name == "worker_pause" and result.ok:
                self._faults.stopped.add(index)
            elif name == "worker_resume" and result.ok:
                self._faults.stopped.discard(index)
        return result

    def probe(self) -> str:
        """The probe URL's body now ("" when the contract names no probe)."""
        return read_probe(self.hooks.probe) if self.hooks.probe else ""

    def probe_changed(self, before: str) -> str:
        """The probe's body once it differs from ``before`` (or at the hook timeout)."""
        if not self.hooks.probe:
            return ""
        return wait_probe_change(self.hooks.probe, before, timeout_s=self.hooks.timeout_s)

    def _must(self, result: HookResult) -> None:
        if not result.ok:
            raise InfrastructureError(result.describe())

    # The Cluster surface (harness.faults.nemesis.Target); the nemesis itself runs the
    # hooks through fire() so it can record each one, these serve the final heal.
    def kill(self, index: int) -> None:
        self._must(self.fire("worker_kill", index))

    def pause(self, index: int) -> None:
        self._must(self.fire("worker_pause", index))

    def resume(self, index: int) -> None:
        # never raises: a failed resume leaves the worker stopped, and the heal says so
        self.fire("worker_resume", index)

    def restart(self, index: int) -> float:
        result = self.fire("worker_restart", index)
        self._must(result)
        return result.seconds

    def deploy(self, *, rolling: bool = True) -> tuple[float, ...]:
        del rolling  # the deploy hook does what the deployment does
        result = self.fire("deploy", -1)
        self._must(result)
        return (result.seconds,)

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop what scanproof started (the router); safe to call twice."""
        try:
            if self.router is not None:
                with contextlib.suppress(Exception):
                    self.router.close()
        finally:
            self.redis.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
