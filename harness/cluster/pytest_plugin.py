"""pytest plugin: a ``scanproof_cluster`` fixture for your own reliability tests.

Installed with scanproof (entry point ``pytest11``), so any project that has
scanproof installed gets the fixture without configuration. Loading it costs
nothing: the cluster machinery is imported only when a test asks for the fixture.

Configure it with ini options (``pytest.ini`` / ``[tool.pytest.ini_options]``)::

    scanproof_app = "mypkg.main:app"
    scanproof_workers = "4"
    scanproof_redis = "embedded"      # auto | embedded | server | redis://...
    scanproof_router = "round-robin"  # random | sticky
    scanproof_start_method = "fork"   # spawn for apps that are not fork-safe
    scanproof_cmd = "node server.js"  # any command instead of scanproof_app ({port}, $PORT)
    scanproof_ready_path = "/healthz" # with scanproof_cmd: ready when GET answers < 500
    scanproof_job_workers = "celery -A tasks worker --concurrency 1"  # job workers beside them
    scanproof_job_worker_count = "2"  # how many (default 1)
    scanproof_job_ready_log = "ready" # a job worker is ready when its log matches

and per test with a marker whose keywords go to :meth:`harness.cluster.Cluster.start`::

    import httpx
    import pytest

    @pytest.mark.scanproof(workers=2, env={"FEATURE_X": "1"})
    def test_session_survives_a_worker_crash(scanproof_cluster):
        with httpx.Client(base_url=scanproof_cluster.router_url) as client:
            client.post("/login", json={"user": "u1"})
            scanproof_cluster.kill(0)
            ...

Each test gets a fresh cluster (fresh processes, fresh Redis), torn down after it.
Its worker logs (``<i>.log``, every incarnation) are kept in the test's
``tmp_path / "scanproof-logs"`` unless the marker passes ``log_dir``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.cluster import Cluster

_INI: dict[str, tuple[str, str | None]] = {
    # ini name -> (Cluster.start keyword, help)
    "scanproof_app": ("app", "ASGI app MODULE:ATTR for scanproof_cluster"),
    "scanproof_workers": ("workers", "worker processes for scanproof_cluster (default 4)"),
    "scanproof_redis": ("redis", "auto | embedded | server | redis:// URL (default embedded)"),
    "scanproof_router": ("router", "round-robin | random | sticky (default round-robin)"),
    "scanproof_preset": ("preset", "the reference service's preset (Cluster.start preset=)"),
    "scanproof_start_method": ("start_method", "fork (default) or spawn"),
    "scanproof_cmd": ("cmd", "run each worker as this command instead of an ASGI app"),
    "scanproof_ready_path": ("ready_path", "with scanproof_cmd: ready when GET PATH answers"),
    "scanproof_job_workers": ("job_workers", "job workers (Celery, RQ...) run this command"),
    "scanproof_job_worker_count": ("job_worker_count", "how many job workers (default 1)"),
    "scanproof_job_ready_log": ("job_ready_log", "a job worker is ready when its log matches"),
}
_WHOLE_NUMBERS = ("workers", "job_worker_count")


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, (_, help_text) in _INI.items():
        parser.addini(name, help=help_text or "", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "scanproof(**kwargs): options for the scanproof_cluster fixture "
        "(keywords of harness.Cluster.start)",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, (keyword, _) in _INI.items():
        value = request.config.getini(name)
        if value:
            options[keyword] = int(value) if keyword in _WHOLE_NUMBERS else value
    marker = request.node.get_closest_marker("scanproof")
    if marker is not None:
        options.update(marker.kwargs)
    return options


@pytest.fixture
def scanproof_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running :class:`harness.cluster.Cluster`, closed after the test."""
    from harness.cluster import Cluster

    options = _options(request)
    if "log_dir" not in options:  # the worker logs stay with the test's tmp_path
        options["log_dir"] = request.getfixturevalue("tmp_path") / "scanproof-logs"
    with Cluster.start(**options) as cluster:
        yield cluster
