"""Redis backends a cluster can run on, and the Redis-level faults each supports.

``open_backend(spec)`` gives an embedded fakeredis TCP server, a real
``redis-server`` the harness starts, or an external URL (faults only when the
user allows them). See :mod:`._open` for the specs.
"""

from __future__ import annotations

from harness.cluster.redis._open import (
    DESTRUCTIVE_FAULTS,
    EVICTION_POLICIES,
    EmbeddedRedis,
    ExternalRedis,
    Fault,
    RedisBackend,
    ServerRedis,
    check_url,
    make_client,
    open_backend,
    opt_in_refusal,
    resolve_spec,
    spec_backend,
)

__all__ = [
    "DESTRUCTIVE_FAULTS",
    "EVICTION_POLICIES",
    "EmbeddedRedis",
    "ExternalRedis",
    "Fault",
    "RedisBackend",
    "ServerRedis",
    "check_url",
    "make_client",
    "open_backend",
    "opt_in_refusal",
    "resolve_spec",
    "spec_backend",
]
