"""The shared Redis connection manager, with the real one's health semantics.

``get_client()`` runs a health check (PING) at most once per health interval and
counts failures into a circuit breaker (5 failures open it for 300 s, scaled).
While unhealthy it returns ``None`` (the real manager, bug F2) or raises
:class:`StoreUnavailable` (sound). The client's retry policy and timeouts are
explicit (redis-py 8 would otherwise retry every failed command 10 times).

>>> import fakeredis
>>> server = fakeredis.FakeServer()
>>> manager = RedisManager(
...     factory=lambda **kw: fakeredis.FakeAsyncRedis(server=server, **kw),
...     policy=RETRY_POLICIES["bounded"], health_interval_s=0.3, breaker_open_s=3.0,
...     none_when_unhealthy=True)
>>> import asyncio; asyncio.run(manager.get_client()) is not None
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from reference_impl.clock import SYSTEM_CLOCK, Clock
from reference_impl.timing import BREAKER_FAILURES

_log = logging.getLogger("reference_impl.redis")

RedisFactory = Callable[..., "aioredis.Redis"]


class StoreUnavailable(Exception):
    """Redis cannot be used right now (sound answers 503 instead of guessing)."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How the Redis client retries and times out; shown in ``_meta``."""

    name: str
    retries: int
    backoff: str
    backoff_base_s: float
    backoff_cap_s: float
    retry_on: tuple[str, ...]
    socket_timeout_s: float
    socket_connect_timeout_s: float

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.asyncio.Redis`` that enforce this policy."""
        return {
            "retry": Retry(
                ExponentialWithJitterBackoff(base=self.backoff_base_s, cap=self.backoff_cap_s),
                self.retries,
                supported_errors=(RedisConnectionError, RedisTimeoutError),
            ),
            "socket_timeout": self.socket_timeout_s,
            "socket_connect_timeout": self.socket_connect_timeout_s,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RETRY_POLICIES: dict[str, RetryPolicy] = {
    # What redis-py 8.1 does when the caller says nothing (redis/_defaults.py):
    # 10 retries of ConnectionError/TimeoutError, jittered exponential backoff
    # from 10 ms capped at 1 s, 5 s socket and connect timeouts.
    "redis-py-default": RetryPolicy(
        name="redis-py-default",
        retries=10,
        backoff="exponential-with-jitter",
        backoff_base_s=0.01,
        backoff_cap_s=1.0,
        retry_on=("ConnectionError", "TimeoutError"),
        socket_timeout_s=5.0,
        socket_connect_timeout_s=5.0,
    ),
    "bounded": RetryPolicy(
        name="bounded",
        retries=2,
        backoff="exponential-with-jitter",
        backoff_base_s=0.02,
        backoff_cap_s=0.1,
        retry_on=("ConnectionError", "TimeoutError"),
        socket_timeout_s=1.0,
        socket_connect_timeout_s=1.0,
    ),
}


def url_factory(url: str) -> RedisFactory:
    """A factory building clients for ``url`` (``redis://host:port/db``)."""

    def build(**kwargs: Any) -> aioredis.Redis:
        return aioredis.Redis.from_url(url, decode_responses=True, **kwargs)

    return build


class RedisManager:
    """Hands out one shared client per process, or None/raise while unhealthy."""

    def __init__(
        self,
        *,
        factory: RedisFactory,
        policy: RetryPolicy,
        health_interval_s: float,
        breaker_open_s: float,
        none_when_unhealthy: bool,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._factory = factory
        self.policy = policy
        self._health_interval_s = health_interval_s
        self._breaker_open_s = breaker_open_s
        self._none_when_unhealthy = none_when_unhealthy
        self._client: aioredis.Redis | None = None
        self._healthy = True
        self._checked_at = float("-inf")
        self._failures = 0
        self._open_until = float("-inf")

    async def get_client(self) -> aioredis.Redis | None:
        """The client, or None (legacy) / StoreUnavailable (sound) while unhealthy."""
        now = self._clock.monotonic()
        if now < self._open_until:
            return self._unhealthy("circuit breaker open")
        if self._client is None:
            # No I/O here: connections open on first command, after the fork.
            self._client = self._factory(**self.policy.client_kwargs())
        if now - self._checked_at >= self._health_interval_s:
            self._checked_at = now
            try:
                await self._client.ping()
            except (RedisError, OSError) as exc:
                self._healthy = False
                self.record_failure(exc)
            else:
                self._healthy = True
        if not self._healthy or self._clock.monotonic() < self._open_until:
            return self._unhealthy("health check failed")
        return self._client

    def _unhealthy(self, why: str) -> aioredis.Redis | None:
        if self._none_when_unhealthy:
            return None
        raise StoreUnavailable(f"redis unavailable: {why}")

    def record_failure(self, exc: BaseException) -> None:
        """Count a failed command; the fifth consecutive one opens the breaker."""
        self._failures += 1
        _log.warning("redis failure %d: %s", self._failures, exc)
        if self._failures >= BREAKER_FAILURES:
            self._open_until = self._clock.monotonic() + self._breaker_open_s
            self._failures = 0

    def record_success(self) -> None:
        self._failures = 0

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
