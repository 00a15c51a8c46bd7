"""A whole cluster in one object: Redis, N worker processes and the per-request router.

>>> from harness import Cluster
>>> with Cluster.start(app="reference_impl.app:app", workers=4, preset="claimed-fix") as cluster:
...     print(cluster.router_url, cluster.redis_url)
...     cluster.kill(2)                 # a crash: the router finds out on its own
...     seconds = cluster.restart(2)    # back, on the same port, in rotation
...     cluster.deploy(rolling=True)    # every worker replaced, one at a time
...     cluster.redis.restart()         # Redis faults live on the backend
... # doctest: +SKIP

Arguments are validated before anything starts (UsageError naming the value
and the fix); an app that fails to start raises InfrastructureError with the
worker's last log lines. Every process is gone when the ``with`` block ends,
whatever ends it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

from harness._events import EventHook
from harness._proc import is_alive
from harness.errors import UsageError
from harness.redis_backends import RedisBackend, open_backend, resolve_spec
from harness.router import Router, WorkerRoute, check_policy
from harness.supervisor import (
    START_METHODS,
    RestartRecord,
    StartMethod,
    Supervisor,
    WorkerInfo,
)

DEFAULT_APP: Final = "reference_impl.app:app"
_APP_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_MAX_WORKERS: Final = 64


def check_app(app: str, cwd: str | None = None) -> str:
    """Validate ``module:attr`` and that the module can be found from ``cwd``."""
    if not _APP_SPEC.match(app):
        raise UsageError(f"--app {app!r}: expected MODULE:ATTR, e.g. --app mypkg.main:app")
    module = app.partition(":")[0]
    directory = cwd or os.getcwd()
    # Workers run with the caller's working directory first on sys.path; look there too.
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    finally:
        if added:
            sys.path.remove(directory)
    if not found:
        raise UsageError(
            f"--app {app}: module {module!r} cannot be imported from {directory}; "
            "run from your project's directory or pip install it"
        )
    return app


def _check_preset(preset: str) -> None:
    try:
        from reference_impl.flags import PRESETS
    except ImportError:
        return  # another app: the preset is passed through as REFIMPL_PRESET
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset!r}: unknown preset; use one of {', '.join(PRESETS)}")


class Cluster:
    """A running cluster; build it with :meth:`Cluster.start` and use it as a context manager."""

    def __init__(
        self,
        *,
        redis: RedisBackend,
        supervisor: Supervisor,
        router: Router,
        workdir: Path,
        owns_workdir: bool,
    ) -> None:
        self.redis = redis
        self.supervisor = supervisor
        self.router = router
        self.workdir = workdir
        self._owns_workdir = owns_workdir

    @classmethod
    def start(
        cls,
        *,
        app: str = DEFAULT_APP,
        workers: int = 4,
        router: str = "round-robin",
        redis: str = "embedded",
        env: Mapping[str, str] | None = None,
        preset: str | None = None,
        start_method: StartMethod = "fork",
        allow_destructive: bool = False,
        allow_remote_faults: bool = False,
        on_event: EventHook | None = None,
        cwd: str | None = None,
        workdir: Path | None = None,
        ready_timeout: float = 30.0,
    ) -> Cluster:
        """Start Redis, ``workers`` processes of ``app`` and the router; return when all serve.

        ``redis``: ``embedded`` | ``auto`` | ``server`` | a ``redis://`` URL.
        ``env`` is added to the caller's environment for the workers; ``preset``
        sets ``REFIMPL_PRESET``. ``start_method="spawn"`` for apps that are not
        fork-safe. ``on_event`` receives a ClusterEvent after every fault.
        """
        if not isinstance(workers, int) or not 1 <= workers <= _MAX_WORKERS:
            raise UsageError(f"--workers {workers}: must be 1..{_MAX_WORKERS}; pass --workers 4")
        check_app(app, cwd)
        check_policy(router)
        resolve_spec(redis)
        if start_method not in START_METHODS:
            raise UsageError(
                f"start method {start_method!r} is unknown; use 'fork' (fast) or 'spawn' "
                "(for apps that are not fork-safe)"
            )
        worker_env = dict(env or {})
        if preset is not None:
            _check_preset(preset)
            worker_env["REFIMPL_PRESET"] = preset
        owns = workdir is None
        directory = workdir or Path(tempfile.mkdtemp(prefix="scanproof-cluster-"))
        backend: RedisBackend | None = None
        supervisor: Supervisor | None = None
        routed: Router | None = None
        try:
            # Redis, the app's import and the router start side by side: each is a
            # Python interpreter that takes a few hundred ms to get going.
            backend = open_backend(
                redis,
                workdir=directory,
                allow_destructive=allow_destructive,
                allow_remote_faults=allow_remote_faults,
                wait=False,
            )
            backend.on_event = on_event
            supervisor = Supervisor(
                app,
                workers,
                redis_url=backend.url,
                workdir=directory,
                env=worker_env,
                cwd=cwd,
                start_method=start_method,
                on_event=on_event,
                ready_timeout=ready_timeout,
            )
            supervisor.launch()
            routed = Router.launch(
                [f"unix:{path}" for path in supervisor.unix_paths],
                policy=router,
                workdir=directory,
            )
            backend.wait_ready()
            supervisor.start()
            routed.wait_ready()
        except BaseException:
            if routed is not None:
                routed.close()
            if supervisor is not None:
                supervisor.close()
            if backend is not None:
                backend.close()
            if owns:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        supervisor.listener = routed
        return cls(
            redis=backend,
            supervisor=supervisor,
            router=routed,
            workdir=directory,
            owns_workdir=owns,
        )

    # ---------------------------------------------------------------- addresses
    @property
    def router_url(self) -> str:
        """Where clients send requests: ``http://127.0.0.1:<port>``."""
        return self.router.url

    @property
    def router_pid(self) -> int:
        return self.router.pid

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def workers(self) -> tuple[WorkerInfo, ...]:
        """A snapshot of every worker: index, url, port, pid, alive, stopped."""
        return self.supervisor.workers

    @property
    def restarts(self) -> list[RestartRecord]:
        """Every measured worker restart so far (stop and start-to-ready seconds)."""
        return self.supervisor.restarts

    def pids(self) -> list[int]:
        """Every live process of the cluster: workers, their parent, router, Redis."""
        pids = [*self.supervisor.pids(), self.router.pid, *self.redis.pids()]
        return [p for p in pids if is_alive(p)]

    def routes(self) -> tuple[WorkerRoute, ...]:
        """The router's view: which workers are in rotation, requests and 502s per worker."""
        return self.router.routes()

    # ------------------------------------------------------------------- faults
    def kill(self, index: int) -> None:
        """SIGKILL worker ``index``; the router takes it out at the first refused connect."""
        self.supervisor.kill(index)

    def pause(self, index: int) -> None:
        """SIGSTOP worker ``index``: requests routed to it hang until :meth:`resume`."""
        self.supervisor.pause(index)

    def resume(self, index: int) -> None:
        self.supervisor.resume(index)

    def restart(self, index: int, *, graceful: bool = False) -> float:
        """Replace worker ``index``; seconds until the new process is ready and routed."""
        return self.supervisor.restart(index, graceful=graceful)

    def deploy(self, *, rolling: bool = True, graceful: bool = True) -> tuple[float, ...]:
        """Restart all workers, one at a time or all at once (all state in memory is lost)."""
        return self.supervisor.deploy(rolling=rolling, graceful=graceful)

    def set_policy(self, policy: str) -> None:
        """Switch the router's policy: ``round-robin``, ``random`` or ``sticky``."""
        self.router.set_policy(policy)

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop everything; safe to call twice."""
        try:
            self.router.close()
        finally:
            try:
                self.supervisor.close()
            finally:
                self.redis.close()
                if self._owns_workdir:
                    shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
