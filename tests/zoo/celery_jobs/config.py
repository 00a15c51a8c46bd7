"""The Celery app of the celery_jobs service, configured by variant.

``CELERY_JOBS_VARIANT`` (read by the web workers and the job workers alike):

- ``correct`` (default): late acknowledgement (``task_acks_late``) with
  ``task_reject_on_worker_lost``: a task whose job worker dies mid-run stays in
  Redis's ``unacked`` set and is delivered again once it has been invisible for
  :data:`VISIBILITY_S`; results outlive any retention a test promises
  (:data:`RESULT_EXPIRES_S`); failed tasks read ``FAILURE`` with the error as a string;
- ``defaults``: Celery's default early acknowledgement: a task is acknowledged when
  it starts, so a job worker killed mid-task loses exactly that task, which then
  reads ``PENDING`` for ever (``task_track_started`` is off, as by default);
- ``failing_500``: correct, except that the status endpoint returns the failed
  task's exception as the tutorial does, which is not JSON-serialisable: every
  status answer about a failed task is a 500;
- ``stopped``: correct; its tests simply start no job worker.

Every variant fetches one message at a time (``worker_prefetch_multiplier = 1``)
and has the same short visibility timeout, so a killed worker loses nothing but
the task it was running (an early-acknowledged message it had prefetched comes
back too).

>>> variant({"CELERY_JOBS_VARIANT": "defaults"})
'defaults'
>>> variant({})
'correct'
>>> variant({"CELERY_JOBS_VARIANT": "late"})
Traceback (most recent call last):
...
ValueError: CELERY_JOBS_VARIANT='late': valid: correct, defaults, failing_500, stopped
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from celery import Celery

VARIANTS = ("correct", "defaults", "failing_500", "stopped")
TASK_NAME = "celery_jobs.run"
VISIBILITY_S = 4  # an unacknowledged message this old is delivered again
MUTEX_EXPIRE_S = 2  # how long a dead worker's redelivery lock outlives it
RESULT_EXPIRES_S = 3600  # far beyond any retention the contract promises
REDIS_TIMEOUT_S = 2.0
# The job workers' command (--job-workers): prefork, so that a kill takes the parent,
# which acknowledges, and the child running the task together (see tasks.py).
WORKER_COMMAND = (
    "celery -A tests.zoo.celery_jobs.tasks worker --pool prefork --concurrency 1 "
    "-l info --without-mingle --without-gossip"
)


def variant(environ: Mapping[str, str] = os.environ) -> str:
    """The variant named by ``CELERY_JOBS_VARIANT`` (default ``correct``)."""
    name = environ.get("CELERY_JOBS_VARIANT", "") or "correct"
    if name not in VARIANTS:
        raise ValueError(f"CELERY_JOBS_VARIANT={name!r}: valid: {', '.join(VARIANTS)}")
    return name


def make_celery(environ: Mapping[str, str] = os.environ) -> Celery:
    """A Celery app on ``REDIS_URL`` (broker and result backend), for the variant."""
    url = environ.get("REDIS_URL", "")
    if not url:
        raise RuntimeError("celery_jobs: REDIS_URL is not set (scanproof sets it)")
    name = variant(environ)
    app = Celery("celery_jobs", broker=url, backend=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_S,
            "unacked_restore_interval": 1,  # sweep for abandoned messages every second
            "unacked_restore_throttle": 1,
            # kombu sweeps under a Redis lock that lives 300 s by default: a job worker
            # SIGKILLed mid-sweep would block every redelivery for five minutes
            "unacked_mutex_expire": MUTEX_EXPIRE_S,
            "socket_timeout": REDIS_TIMEOUT_S,
            "socket_connect_timeout": REDIS_TIMEOUT_S,
        },
        redis_socket_timeout=REDIS_TIMEOUT_S,
        redis_socket_connect_timeout=REDIS_TIMEOUT_S,
        worker_hijack_root_logger=False,
    )
    if name != "defaults":
        app.conf.update(
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            task_track_started=True,
            result_expires=RESULT_EXPIRES_S,
        )
    return app
