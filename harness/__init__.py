"""scanproof's harness: cluster, client, history, nemesis, checkers, runner and CLI.

The public surface is re-exported here and kept small; everything else lives in
private modules. Cluster names are imported lazily on first use, so that
``import harness`` (which the pytest plugin does in every pytest run) stays cheap.

>>> import harness
>>> harness.__version__  # doctest: +SKIP
'0.1.0'
>>> with harness.Cluster.start(app="tests.apps.whoami:app") as cluster:  # doctest: +SKIP
...     print(cluster.router_url)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness._version import __version__

if TYPE_CHECKING:
    from harness._events import ClusterEvent, EventKind
    from harness.cluster import Cluster
    from harness.redis_backends import Fault, RedisBackend
    from harness.supervisor import WorkerInfo

# public name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    "Cluster": "harness.cluster",
    "ClusterEvent": "harness._events",
    "EventKind": "harness._events",
    "Fault": "harness.redis_backends",
    "RedisBackend": "harness.redis_backends",
    "WorkerInfo": "harness.supervisor",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Cluster",
    "ClusterEvent",
    "EventKind",
    "Fault",
    "RedisBackend",
    "WorkerInfo",
    "__version__",
]
