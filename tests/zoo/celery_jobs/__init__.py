"""Zoo service "celery_jobs": a FastAPI web tier whose jobs run in Celery over Redis.

The shape of the popular FastAPI + Celery tutorial service: the web workers only
queue a task and read its state; separate Celery worker processes run it.

==========================  ==========================================================
request                     answers
==========================  ==========================================================
``POST /tasks``             201 ``{"task_id"}``; body ``{"type": N, "fail": bool?}``
                            (``type`` is required: without it, 500 as in the tutorial)
``GET /tasks/<id>``         200 ``{"task_id", "task_status", "task_result"}``, status
                            ``PENDING`` (queued, running unseen, lost, or never
                            issued: Celery cannot tell), ``STARTED``, ``SUCCESS`` (the
                            result is a number) or ``FAILURE``
==========================  ==========================================================

No results endpoint, no tenants, no progress. A task sleeps 1-2 s (fixed by its id)
and returns a number. Broker and result backend are ``REDIS_URL``; keys are
Celery's own: the queue ``celery``, the in-flight ``unacked``/``unacked_index``,
results ``celery-task-meta-<id>``.

Run it as scanproof does (variant from ``CELERY_JOBS_VARIANT``, see
:mod:`tests.zoo.celery_jobs.config`)::

    scanproof gate --app tests.zoo.celery_jobs.web:app \\
        --job-workers "celery -A tests.zoo.celery_jobs.tasks worker --pool prefork -c 1 -l info" \\
        --contract tests/zoo/celery_jobs/contract.toml --redis server
"""
