"""The cluster: Redis, N real worker processes and the per-request router.

Public surface: :class:`Cluster` (start, kill, pause, restart, deploy),
:class:`WorkerInfo`, and the lifecycle events :class:`ClusterEvent` /
:class:`EventKind`. Modules: :mod:`.supervisor` (ASGI worker processes),
:mod:`.command` (any command as the workers, ``Cluster.start(cmd=...)``),
:mod:`.deployment` (:class:`Deployment`: a running deployment by URL, faults by hooks),
:mod:`.events`, :mod:`.pytest_plugin`; subpackages :mod:`.router` and
:mod:`.redis`. Underscore modules are private to this package.

>>> from harness.cluster import Cluster
>>> with Cluster.start(app="tests.apps.whoami:app", workers=2) as cluster:  # doctest: +SKIP
...     print(cluster.router_url)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
    from harness.cluster._cluster import Cluster
    from harness.cluster.deployment import Deployment
    from harness.cluster.events import ClusterEvent, EventKind
    from harness.cluster.supervisor import WorkerInfo

__all__ = ["Cluster", "ClusterEvent", "Deployment", "EventKind", "WorkerInfo"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Cluster": "harness.cluster._cluster",
        "ClusterEvent": "harness.cluster.events",
        "Deployment": "harness.cluster.deployment",
        "EventKind": "harness.cluster.events",
        "WorkerInfo": "harness.cluster.supervisor",
    },
)
