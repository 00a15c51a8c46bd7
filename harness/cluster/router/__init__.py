"""The per-request router: a real HTTP proxy in its own process.

:class:`Router` (the parent-side handle) starts ``_main`` as a child process
whose asyncio protocols (``_proto``) forward each request to the next worker
of a keep-alive pool (``_pool``), parsing only HTTP heads (``_http_parse``).
"""

from __future__ import annotations

from harness.cluster.router._control import Router, WorkerRoute, check_policy

__all__ = ["Router", "WorkerRoute", "check_policy"]
