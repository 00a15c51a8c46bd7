"""An in-process fake fault target for unit tests of the nemesis: fakeredis, no workers."""

from __future__ import annotations

import fakeredis
import redis

from harness.cluster.redis import Fault, RedisBackend
from harness.cluster.supervisor import WorkerInfo


class InprocessFakeRedisBackend(RedisBackend):
    """Every key fault hook of the base class, on a shared in-process fakeredis."""

    name = "fake"
    supported_faults = frozenset(Fault)

    def __init__(self) -> None:
        super().__init__("redis://in-process")
        self.server = fakeredis.FakeServer()

    def client(self) -> redis.Redis:
        return fakeredis.FakeRedis(server=self.server)


class InprocessFakeTarget:
    """What the nemesis aims at: a Redis and (here) no workers."""

    def __init__(self) -> None:
        self.redis = InprocessFakeRedisBackend()
        self.workers: tuple[WorkerInfo, ...] = ()
