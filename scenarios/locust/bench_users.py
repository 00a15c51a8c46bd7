"""Users for ``benchmarks/bench_locust.py``: the same cheap request, recorded or not.

``RecordingStatusUser`` polls the status of a scan that does not exist through
:class:`~scenarios.locust.recording.RecordingUser` (history line per invoke and
completion, body parsed, outcome classified); ``PlainStatusUser`` sends the
identical request with locust's plain ``FastHttpUser``. Pick one by name::

    locust -f scenarios/locust/bench_users.py --headless --host URL PlainStatusUser
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task

from scenarios.locust.recording import STATE, RecordingUser

TENANT = "bench-tenant"
SCAN_ID = "scan_does_not_exist"


class RecordingStatusUser(RecordingUser):
    wait_time = constant(0)

    @task
    def poll(self) -> None:
        self.status(TENANT, SCAN_ID)


class PlainStatusUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def poll(self) -> None:
        c = STATE.settings.contract
        self.client.get(c.status_url(SCAN_ID), headers=c.auth(TENANT), name="status")
