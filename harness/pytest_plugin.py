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
    "scanproof_preset": ("preset", "REFIMPL_PRESET for the reference service"),
    "scanproof_start_method": ("start_method", "fork (default) or spawn"),
}


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
            options[keyword] = int(value) if keyword == "workers" else value
    marker = request.node.get_closest_marker("scanproof")
    if marker is not None:
        options.update(marker.kwargs)
    return options


@pytest.fixture
def scanproof_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running :class:`harness.cluster.Cluster`, closed after the test."""
    from harness.cluster import Cluster

    with Cluster.start(**_options(request)) as cluster:
        yield cluster
