"""The locustfile: users that follow the chaos run's workload and record it.

Run it any of three ways (details in docs/drivers.md)::

    scanproof run --driver locust --users 20 --spawn-rate 10     # cluster + nemesis + judge
    locust -f scenarios/locust/scan_load.py --host http://127.0.0.1:PORT   # web UI
    locust -f scenarios/locust/scan_load.py --master --expect-workers 2 --host URL
    locust -f scenarios/locust/scan_load.py --worker --master-host 127.0.0.1   # x2

Each user is one tenant. It runs scans one after another: discover (sometimes
with its previous scan's filters, so the same result slot), poll the status
every ``poll_interval`` (scaled by the app's time scale), fetch results every
``results_every`` polls and once it sees a terminal state, keep polling for
``linger`` of the retention window, fetch results a last time, and sometimes
probe another user's scan (``probe status`` / ``probe results``). With chance
``overlap`` it starts its next scan while the previous one lingers.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from locust import task

from scenarios.locust._workload import TERMINAL, LiveScan, UserPlan, tenant_name
from scenarios.locust.recording import (
    KNOWN_SCANS,
    STATE,
    RecordingUser,
    remember_scan,
    timing_for,
)

_user_index = itertools.count()


class ScanUser(RecordingUser):
    """One tenant running scans in a loop; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        runner = self.environment.runner
        worker_index = getattr(runner, "worker_index", 0) if runner is not None else 0
        settings = STATE.settings
        self.tenant = tenant_name(
            settings.seed, worker_index=worker_index, user_index=next(_user_index)
        )
        self.plan = UserPlan(settings.workload, seed=settings.seed, tenant=self.tenant)
        self.scans: list[LiveScan] = []
        self.interval = 1.0
        self._next_tick = 0.0

    def on_start(self) -> None:
        timing = timing_for(self.host or self.environment.host or "")
        self.timing = timing
        self.interval = STATE.settings.workload.poll_interval * timing.time_scale
        # users of one spawn wave would otherwise poll in lockstep
        self._next_tick = time.monotonic() + self.plan.rng.uniform(0, self.interval)

    def wait_time(self) -> float:
        # constant pacing: one tick per poll interval, however long the tick took
        now = time.monotonic()
        self._next_tick = max(self._next_tick + self.interval, now)
        return max(0.0, self._next_tick - now)

    def _start_scan(self) -> None:
        scan_id = self.discover(
            self.tenant, filters=self.plan.next_filters(), fail=self.plan.next_fail()
        )
        if scan_id is None:
            return
        now = time.monotonic()
        remember_scan(self.tenant, scan_id)
        self.scans.append(
            LiveScan(
                scan_id=scan_id,
                accepted_at=now,
                deadline=now + self.timing.window.scan_deadline_s + self.interval,
                probe_at_poll=self.plan.probe_at_poll(),
            )
        )

    def _probe(self) -> None:
        victim = self.plan.choose_victim(KNOWN_SCANS, self.tenant)
        if victim is not None:
            self.status(self.tenant, victim[1], name="probe status")
            self.results(self.tenant, victim[1], name="probe results")

    def _poll(self, scan: LiveScan) -> None:
        workload = STATE.settings.workload
        if scan.over(time.monotonic()):
            self.results(self.tenant, scan.scan_id)
            self.scans.remove(scan)
            return
        done = self.status(self.tenant, scan.scan_id)
        scan.polls += 1
        if scan.polls % workload.results_every == 0:
            self.results(self.tenant, scan.scan_id)
        if scan.polls == scan.probe_at_poll:
            self._probe()
        if done.outcome == "ok" and done.body_status in TERMINAL and scan.linger_until is None:
            scan.linger_until = time.monotonic() + workload.linger * self.timing.retention_s
            self.results(self.tenant, scan.scan_id)
            if len(self.scans) == 1 and self.plan.overlap():
                self._start_scan()

    @task
    def tick(self) -> None:
        """Start a scan when none is running, then poll every scan this user follows."""
        if not self.scans:
            self._start_scan()
            return
        for scan in list(self.scans):
            self._poll(scan)
