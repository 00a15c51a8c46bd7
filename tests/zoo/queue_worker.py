"""Zoo job worker for :mod:`tests.zoo.queue_web`: ``python -m tests.zoo.queue_worker``.

Takes a job off ``qz:<run>:queue`` with BLMOVE onto ``qz:<run>:inflight`` (so a job
being run is in flight, not queued), marks the scan ``running``, sleeps the job's
seconds, marks it ``complete`` and removes it from the in-flight list. Prints
``queue worker <JOB_WORKER_ID> ready`` once connected; SIGTERM ends it between jobs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from types import FrameType

import redis

_stop = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    global _stop
    _stop = True


def main() -> int:
    signal.signal(signal.SIGTERM, _on_term)
    run = os.environ.get("SCANPROOF_RUN_ID", "local")
    queue, inflight = f"qz:{run}:queue", f"qz:{run}:inflight"
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    client.ping()
    print(f"queue worker {os.environ.get('JOB_WORKER_ID', '?')} ready", flush=True)
    while not _stop:
        raw = client.blmove(queue, inflight, 0.2, "RIGHT", "LEFT")
        if raw is None:
            continue
        job = json.loads(raw)
        key = f"qz:{run}:scan:{job['id']}"
        client.set(key, json.dumps({"status": "running"}))
        time.sleep(float(job["seconds"]))
        client.set(key, json.dumps({"status": "complete"}))
        client.lrem(inflight, 1, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
