"""The job workers' side: the Celery app and its one task.

Run by scanproof as ``--job-workers``::

    celery -A tests.zoo.celery_jobs.tasks worker --pool prefork --concurrency 1 \\
        -l info --without-mingle --without-gossip

Why prefork and not ``--pool solo``: Celery acknowledges early (the ``defaults``
variant) from its event loop (``call_soon``), which a solo pool blocks while the
task runs, so under solo the early ack only happens after the task and a kill
loses nothing. Under prefork the parent acknowledges while its child runs the
task. Killing the job worker's whole process group (parent and child) then
loses exactly the running task with early acknowledgement, and leaves it in
Redis's ``unacked`` set, to be delivered again, with late acknowledgement
(:mod:`tests.zoo.celery_jobs.config`).
"""

from __future__ import annotations

import time
from typing import Any

from tests.zoo._common import scan_seconds
from tests.zoo.celery_jobs.config import TASK_NAME, make_celery

TASK_S = (1.0, 2.0)

app = make_celery()


class JobFailed(Exception):
    """What a task asked to fail raises (an exception: not JSON-serialisable)."""


@app.task(name=TASK_NAME, bind=True)
def run(self: Any, task_type: int, fail: bool = False) -> int:
    """Sleep 1-2 s (fixed by the task id), then return a number, or raise when asked."""
    time.sleep(scan_seconds(str(self.request.id), *TASK_S))
    if fail:
        raise JobFailed(f"task of type {task_type} asked to fail")
    return task_type * 100 + len(str(self.request.id))
