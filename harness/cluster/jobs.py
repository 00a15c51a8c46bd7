"""Job workers: the processes that run a job-queue service's jobs (Celery, RQ, arq...).

Beside the web workers, a job-queue service runs job workers that take jobs off a
queue in Redis and run them; they answer no HTTP. ``Cluster.start(job_workers=CMD,
job_worker_count=N)`` (``--job-workers CMD --job-worker-count N``) runs N copies of
``CMD`` exactly as :mod:`harness.cluster.command` runs command workers: each is a
process group watched by a keeper, so a kill takes the whole group (a Celery master
and its pool) and nothing outlives scanproof, SIGKILL included. Each copy gets the
caller's environment plus ``env``, ``REDIS_URL`` and ``JOB_WORKER_ID`` (its index);
the placeholders ``{worker}`` and ``{redis_url}`` are filled in (``{port}`` is 0: a
job worker has no port). Its output goes to ``job-<i>.log`` in the log directory.

A job worker is ready when it has stayed alive for :data:`SETTLE_S` seconds or, with
``ready_log=REGEX``, when its log (this incarnation's part) matches ``REGEX``, e.g.
``"ready"`` for Celery's ``celery@host ready.`` line.

>>> JobSupervisor("python -m celery worker", 1, redis_url="", workdir=Path("."), ready_log="(")
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
harness.errors.UsageError: --job-ready-log '(': not a regular expression (...); e.g. ...
>>> with JobSupervisor("python w.py", 2, redis_url=url, workdir=tmp) as jobs:  # doctest: +SKIP
...     jobs.kill(0)         # SIGKILL the group: the jobs it held are gone
...     jobs.restart(0)      # a new incarnation, same JOB_WORKER_ID
...     print(jobs.workers)  # WorkerInfo(index, url="", port=0, pid, alive, stopped)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from harness.cluster._logs import DEFAULT_MAX_BYTES
from harness.cluster._proc import is_alive
from harness.cluster.command import CommandSupervisor, check_command
from harness.cluster.events import EventHook
from harness.errors import UsageError

SETTLE_S: Final = 0.5
"""Without ``ready_log``, a job worker alive this long after its start is ready."""
MAX_JOB_WORKERS: Final = 64


def check_job_options(
    command: str, count: int, ready_log: str | None, *, path: str | None = None
) -> re.Pattern[str] | None:
    """Check ``--job-workers``, ``--job-worker-count`` and ``--job-ready-log`` before
    anything starts (UsageError, one line); returns the compiled ready pattern.

    >>> check_job_options("python w.py", 0, None)
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: --job-worker-count 0: must be 1..64, e.g. --job-worker-count 2
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_JOB_WORKERS:
        raise UsageError(
            f"--job-worker-count {count}: must be 1..{MAX_JOB_WORKERS}, e.g. --job-worker-count 2"
        )
    check_command(command, path=path, flag="--job-workers")
    if ready_log is None:
        return None
    if not ready_log:
        raise UsageError("--job-ready-log '': give a pattern of the ready line, e.g. ready")
    try:
        return re.compile(ready_log)
    except re.error as exc:
        raise UsageError(
            f"--job-ready-log {ready_log!r}: not a regular expression ({exc}); "
            "e.g. --job-ready-log ready"
        ) from None


class JobSupervisor(CommandSupervisor):
    """N job workers: process groups of one command, with no port; see the module."""

    option = "--job-workers"
    noun = "job worker"

    def __init__(
        self,
        command: str,
        workers: int,
        *,
        redis_url: str,
        workdir: Path,
        ready_log: str | None = None,
        log_dir: Path | None = None,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_event: EventHook | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        path = {**os.environ, **(env or {})}.get("PATH")
        self._ready_rx = check_job_options(command, workers, ready_log, path=path)
        self.ready_log = ready_log
        super().__init__(
            command,
            workers,
            redis_url=redis_url,
            workdir=workdir,
            log_dir=log_dir,
            log_max_bytes=log_max_bytes,
            env=env,
            cwd=cwd,
            on_event=on_event,
            ready_timeout=ready_timeout,
        )
        self.ports = [0] * workers
        self._launched_at = [0.0] * workers
        self._log_offset = [0] * workers
        self._launched = False

    def _address(self, index: int) -> tuple[str, int]:
        """A job worker serves no HTTP: no URL, port 0."""
        return "", 0

    def launch(self) -> None:
        """Start every job worker's processes; :meth:`start` then awaits them ready."""
        try:
            for index in range(self._n):
                self._launch(index)
        except BaseException:
            self.close()
            raise
        self._launched = True

    def start(self) -> JobSupervisor:
        """Start the job workers (unless :meth:`launch` did) and wait until all are ready."""
        if not self._launched:
            self.launch()
        try:
            for index in range(self._n):
                self._await_ready(index)
        except BaseException:
            self.close()
            raise
        self._started = True
        return self

    @property
    def upstreams(self) -> list[str]:
        """Job workers take no requests: none."""
        return []

    def _log_name(self, index: int) -> str:
        return f"job-{index}"

    def _env(self, index: int) -> dict[str, str]:
        return {
            **self._base_env,
            "JOB_WORKER_ID": str(index),
            "REDIS_URL": self._redis_urls[index],
        }

    def _launch(self, index: int) -> None:
        try:
            self._log_offset[index] = self.log_path(index).stat().st_size
        except OSError:
            self._log_offset[index] = 0
        self._launched_at[index] = time.monotonic()
        super()._launch(index)

    def _is_ready(self, index: int) -> bool:
        pid = self._pids[index]
        if not pid or not is_alive(pid):
            return False
        if self._ready_rx is None:
            return time.monotonic() - self._launched_at[index] >= SETTLE_S
        try:
            with self.log_path(index).open("rb") as log:
                size = log.seek(0, 2)
                log.seek(self._log_offset[index] if self._log_offset[index] <= size else 0)
                text = log.read().decode(errors="replace")
        except OSError:
            return False
        return self._ready_rx.search(text) is not None

    def _not_ready(self, index: int) -> str:
        how = (
            f"its log matched --job-ready-log {self.ready_log!r}"
            if self.ready_log
            else "it stayed up"
        )
        return (
            f"job worker {index} (--job-workers {self.command!r}) was not ready ({how}) "
            f"within {self._ready_timeout:g} s"
        )
