"""A whole cluster in one object: Redis, N worker processes and the per-request router.

>>> from harness import Cluster
>>> with Cluster.start(workers=4, preset="late-fix") as cluster:  # the reference service
...     print(cluster.router_url, cluster.redis_url)
...     cluster.kill(2)                 # a crash: the router finds out on its own
...     seconds = cluster.restart(2)    # back, on the same port, in rotation
...     cluster.deploy(rolling=True)    # every worker replaced, one at a time
...     cluster.redis.restart()         # Redis faults live on the backend
... # doctest: +SKIP

Arguments are validated before anything starts (UsageError naming the value
and the fix); an app that fails to start raises InfrastructureError with the
worker's last log lines. Every process is gone when the ``with`` block ends,
whatever ends it; the logs stay. ``log_dir`` says where: ``<log_dir>/<i>.log``
holds worker ``i``'s stdout and stderr, every incarnation after a header line
naming its pid, ``zygote.log`` the app's import and ``router.log`` the router.
Without ``log_dir`` they go to a new directory under
``$TMPDIR/scanproof-logs/`` (the newest 20 are kept), named by
:attr:`Cluster.log_dir`. Each log keeps at most ``log_max_bytes`` (4 MiB): past
that, its older half is dropped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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

from harness.cluster._logs import DEFAULT_MAX_BYTES
from harness.cluster._proc import is_alive
from harness.cluster._worker import WORKER_REDIS_URLS
from harness.cluster.command import CommandSupervisor, check_command
from harness.cluster.events import EventHook
from harness.cluster.jobs import JobSupervisor, check_job_options
from harness.cluster.link import Links
from harness.cluster.redis import RedisBackend, open_backend, resolve_spec
from harness.cluster.router import Router, WorkerRoute, check_policy
from harness.cluster.supervisor import (
    START_METHODS,
    RestartRecord,
    StartMethod,
    Supervisor,
    WorkerInfo,
    WorkerSet,
)
from harness.errors import UsageError
from harness.targets import reference

DEFAULT_APP: Final = reference.DEFAULT_APP
_APP_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_MAX_WORKERS: Final = 64
LOG_ROOT_NAME: Final = "scanproof-logs"
_KEEP_LOG_DIRS: Final = 20


def default_log_dir() -> Path:
    """A new directory for one cluster's logs under ``$TMPDIR/scanproof-logs/``.

    Named ``<UTC time>-<pid>``; only the newest 20 such directories are kept, so
    clusters started without a ``log_dir`` never pile up, but never one whose process
    still runs (a cluster deleted its log directory under another one that way).
    """
    root = Path(tempfile.gettempdir()) / LOG_ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    made = root / f"{stamp}-{os.getpid()}"
    made.mkdir()
    ours = sorted((p for p in root.iterdir() if p.is_dir() and p.name[:8].isdigit()), reverse=True)
    for old in ours[_KEEP_LOG_DIRS:]:
        if _owner_alive(old.name):
            continue  # a running cluster still writes there (many clusters at once)
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
    return made


def _owner_alive(name: str) -> bool:
    """Whether the process that made log directory ``<stamp>-<pid>`` still runs."""
    pid = name.rpartition("-")[2]
    return pid.isdigit() and is_alive(int(pid))


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


class Cluster:
    """A running cluster; build it with :meth:`Cluster.start` and use it as a context manager."""

    def __init__(
        self,
        *,
        redis: RedisBackend,
        supervisor: WorkerSet,
        router: Router,
        workdir: Path,
        owns_workdir: bool,
        log_dir: Path | None = None,
        links: Links | None = None,
        job_workers: JobSupervisor | None = None,
    ) -> None:
        self.redis = redis
        #: The job workers (``Cluster.start(job_workers=CMD)``), else None: ``kill(i)``,
        #: ``pause(i)``, ``resume(i)``, ``restart(i)``, ``workers`` (WorkerInfo snapshots).
        self.job_workers = job_workers
        #: The per-worker Redis links (``Cluster.start(links=True)``), else None.
        self.links = links
        self.supervisor = supervisor
        self.router = router
        self.workdir = workdir
        #: Where the logs are kept: ``<i>.log`` per worker, ``zygote.log``, ``router.log``.
        self.log_dir = log_dir or supervisor.log_dir
        self._owns_workdir = owns_workdir

    @classmethod
    def start(
        cls,
        *,
        app: str = DEFAULT_APP,
        cmd: str | None = None,
        ready_path: str | None = None,
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
        log_dir: Path | None = None,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        ready_timeout: float = 30.0,
        links: bool = False,
        job_workers: str | None = None,
        job_worker_count: int = 1,
        job_ready_log: str | None = None,
    ) -> Cluster:
        """Start Redis, ``workers`` processes of ``app`` and the router; return when all serve.

        ``redis``: ``embedded`` | ``auto`` | ``server`` | a ``redis://`` URL.
        ``env`` is added to the caller's environment for the workers; ``preset``
        selects the reference service's preset (checked here, before anything
        starts). ``start_method="spawn"`` for apps that are not
        fork-safe. ``on_event`` receives a ClusterEvent after every fault.
        ``log_dir``: where the worker and router logs are written and kept
        (default: :func:`default_log_dir`); ``log_max_bytes`` bounds each file.
        ``links=True``: each worker reaches Redis through its own proxy
        (:class:`harness.cluster.link.Links`, log ``links.log``) so link faults can
        act on one worker; without it, workers talk to Redis directly.

        ``cmd``: each worker runs this shell command instead of ``app`` (any language;
        :mod:`harness.cluster.command`): placeholders ``{port}``, ``{worker}``,
        ``{redis_url}``, environment ``PORT``, ``WORKER_ID``, ``REDIS_URL`` (the worker's
        own link with ``links=True``); a worker is its process group, ready when its port
        accepts connections or, with ``ready_path``, when ``GET ready_path`` answers
        below 500. ``app``, ``start_method`` and the import check do not apply to it.

        ``job_workers``: a job-queue service's job workers (Celery, RQ...) run this
        command, ``job_worker_count`` copies beside the web workers
        (:mod:`harness.cluster.jobs`): same environment plus ``REDIS_URL`` (Redis itself,
        never a link) and ``JOB_WORKER_ID``, logs ``job-<i>.log``, ready when alive for a
        moment or when the log matches ``job_ready_log``; :attr:`job_workers` has them.

        >>> Cluster.start(cmd="node s.js", ready_path="up")
        Traceback (most recent call last):
        ...
        harness.errors.UsageError: --ready-path 'up': must start with '/', e.g. --ready-path /health
        """
        if not isinstance(workers, int) or not 1 <= workers <= _MAX_WORKERS:
            raise UsageError(f"--workers {workers}: must be 1..{_MAX_WORKERS}; pass --workers 4")
        if cmd is not None:
            check_command(cmd, ready_path, path={**os.environ, **(env or {})}.get("PATH"))
        elif ready_path is not None:
            raise UsageError(
                f"--ready-path {ready_path}: applies to command workers only; pass --cmd too"
            )
        else:
            check_app(app, cwd)
        if job_workers is not None:
            check_job_options(
                job_workers,
                job_worker_count,
                job_ready_log,
                path={**os.environ, **(env or {})}.get("PATH"),
            )
        elif job_ready_log is not None or job_worker_count != 1:
            flag = "--job-ready-log" if job_ready_log is not None else "--job-worker-count"
            raise UsageError(f"{flag}: applies to job workers only; pass --job-workers CMD too")
        check_policy(router)
        resolve_spec(redis)
        if cmd is None and start_method not in START_METHODS:
            raise UsageError(
                f"start method {start_method!r} is unknown; use 'fork' (fast) or 'spawn' "
                "(for apps that are not fork-safe)"
            )
        if not isinstance(log_max_bytes, int) or log_max_bytes < 1024:
            raise UsageError(
                f"log_max_bytes {log_max_bytes!r}: must be a whole number of bytes >= 1024; "
                f"the default is {DEFAULT_MAX_BYTES}"
            )
        worker_env = dict(env or {})
        if preset is not None:
            worker_env.update(reference.service_env(preset))
        owns = workdir is None
        directory = workdir or Path(tempfile.mkdtemp(prefix="scanproof-cluster-"))
        try:
            logs = Path(log_dir) if log_dir is not None else default_log_dir()
            logs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if owns:
                shutil.rmtree(directory, ignore_errors=True)
            raise UsageError(
                f"log_dir {log_dir}: cannot be created ({exc.strerror}); pass a writable directory"
            ) from exc
        backend: RedisBackend | None = None
        supervisor: WorkerSet | None = None
        routed: Router | None = None
        proxies: Links | None = None
        jobs: JobSupervisor | None = None
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
            if links:
                proxies = Links.launch(backend.url, workers=workers, log=logs / "links.log")
                worker_env[WORKER_REDIS_URLS] = " ".join(proxies.urls)
            upstreams: list[str]
            if cmd is not None:
                commands = CommandSupervisor(
                    cmd,
                    workers,
                    redis_url=backend.url,
                    worker_redis_urls=proxies.urls if proxies is not None else (),
                    ready_path=ready_path,
                    workdir=directory,
                    log_dir=logs,
                    log_max_bytes=log_max_bytes,
                    env=worker_env,
                    cwd=cwd,
                    on_event=on_event,
                    ready_timeout=ready_timeout,
                )
                supervisor, upstreams = commands, commands.upstreams
            else:
                asgi = Supervisor(
                    app,
                    workers,
                    redis_url=backend.url,
                    workdir=directory,
                    log_dir=logs,
                    log_max_bytes=log_max_bytes,
                    env=worker_env,
                    cwd=cwd,
                    start_method=start_method,
                    on_event=on_event,
                    ready_timeout=ready_timeout,
                )
                supervisor, upstreams = asgi, [f"unix:{path}" for path in asgi.unix_paths]
            supervisor.launch()
            routed = Router.launch(
                upstreams,
                policy=router,
                workdir=directory,
                log=logs / "router.log",
            )
            backend.wait_ready()
            if proxies is not None:
                proxies.wait_ready()
            if job_workers is not None:
                jobs = JobSupervisor(
                    job_workers,
                    job_worker_count,
                    redis_url=backend.url,
                    workdir=directory,
                    ready_log=job_ready_log,
                    log_dir=logs,
                    log_max_bytes=log_max_bytes,
                    env=worker_env,
                    cwd=cwd,
                    on_event=on_event,
                    ready_timeout=ready_timeout,
                )
                jobs.launch()  # they start while the web workers do
            supervisor.start()
            if jobs is not None:
                jobs.start()
            routed.wait_ready()
        except BaseException:
            if jobs is not None:
                jobs.close()
            if routed is not None:
                routed.close()
            if supervisor is not None:
                supervisor.close()
            if proxies is not None:
                proxies.close()
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
            log_dir=logs,
            links=proxies,
            job_workers=jobs,
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
        """Every live process of the cluster: workers, their parent, job workers, router,
        Redis."""
        pids = [*self.supervisor.pids(), self.router.pid, *self.redis.pids()]
        if self.job_workers is not None:
            pids.extend(self.job_workers.pids())
        if self.links is not None:
            pids.append(self.links.pid)
        return [p for p in pids if is_alive(p)]

    def log_path(self, index: int) -> Path:
        """Worker ``index``'s log: stdout and stderr of every incarnation, in order."""
        return self.supervisor.log_path(index)

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
            if self.job_workers is not None:
                self.job_workers.close()
            self.router.close()
        finally:
            try:
                self.supervisor.close()
            finally:
                if self.links is not None:
                    self.links.close()
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
