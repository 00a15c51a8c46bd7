"""The Redis key schema and the two ways of executing writes and reads.

Keys (as the real service names them): ``opportunity_scan_result:{slot}``,
``opportunity_scan_lookup:{scan_id}``, ``opportunity_scan_result_index:{scan_id}``,
``opportunity_user_latest_scan:{user_id}``, ``opportunity_scan_active:{key}``, and
sound's ``opportunity_worker_lease:{worker_id}``. Every TTL is in milliseconds.

Legacy execution (bug F3): a write group is a sequence of commands and the
first error aborts the rest of its group, logged and swallowed; a read error
reads as "missing". Atomic execution (sound): all groups of one write go in a
single MULTI/EXEC and any error raises :class:`StoreError`.

A write may be *fenced* (sound's leases): it lands only if a key still holds the
writer's token at the instant it executes, else :class:`FenceLost` is raised and
nothing is written. Atomic execution checks the fence and writes in one Lua
script, so a lease that expires a microsecond earlier stops the write; legacy
execution checks with a GET first (not atomic, like everything legacy does).

>>> Write(key=result_key("alice:0123456789abcdef"), value="{}", ttl_ms=3000).key
'opportunity_scan_result:alice:0123456789abcdef'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from reference_impl.redis_manager import RedisManager

_log = logging.getLogger("reference_impl.store")


def result_key(slot: str) -> str:
    return f"opportunity_scan_result:{slot}"


def lookup_key(scan_id: str) -> str:
    return f"opportunity_scan_lookup:{scan_id}"


def result_index_key(scan_id: str) -> str:
    return f"opportunity_scan_result_index:{scan_id}"


def user_latest_key(user_id: str) -> str:
    return f"opportunity_user_latest_scan:{user_id}"


def active_key(key: str) -> str:
    return f"opportunity_scan_active:{key}"


def worker_lease_key(worker_id: str) -> str:
    return f"opportunity_worker_lease:{worker_id}"


class StoreError(Exception):
    """A Redis command failed under atomic execution (answered with 503)."""


class FenceLost(Exception):
    """A fenced write found its fence key gone or holding another token; nothing written."""


@dataclass(frozen=True, kw_only=True)
class Fence:
    """Write only while ``key`` holds ``token`` (a worker's lease and its incarnation)."""

    key: str
    token: str


# KEYS[1] is the fence; then one key per write with (value, ttl_ms, is_delete) in ARGV.
_FENCED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  local at = (i - 2) * 3 + 2
  if ARGV[at + 2] == '1' then
    redis.call('DEL', KEYS[i])
  elseif tonumber(ARGV[at + 1]) > 0 then
    redis.call('SET', KEYS[i], ARGV[at], 'PX', ARGV[at + 1])
  else
    redis.call('SET', KEYS[i], ARGV[at])
  end
end
return 1
"""


@dataclass(frozen=True, kw_only=True)
class Write:
    """SET key value PX ttl_ms, or DEL key when ``value`` is None."""

    key: str
    value: str | None
    ttl_ms: int = 0


class Store:
    """Executes write groups and reads against one client, legacy or atomic."""

    def __init__(self, *, manager: RedisManager, atomic: bool) -> None:
        self._manager = manager
        self._atomic = atomic

    async def write(
        self,
        client: aioredis.Redis | None,
        groups: Sequence[Sequence[Write]],
        *,
        fence: Fence | None = None,
    ) -> None:
        """Apply ``groups``; a None client skips them silently (the real behaviour).

        With ``fence``, raise :class:`FenceLost` (writing nothing) unless the fence
        key holds the fence token when the write executes.
        """
        if client is None:
            return
        if fence is not None and self._atomic:
            await self._fenced_atomic(client, [w for group in groups for w in group], fence)
            return
        if fence is not None and await self.get(client, fence.key) != fence.token:
            raise FenceLost(f"{fence.key} no longer holds this writer's token")
        if self._atomic:
            pipe = client.pipeline(transaction=True)
            for group in groups:
                for w in group:
                    _queue(pipe, w)
            try:
                await pipe.execute()
            except RedisError as exc:
                self._manager.record_failure(exc)
                raise StoreError(f"write failed: {exc}") from exc
            self._manager.record_success()
            return
        for group in groups:
            try:
                for w in group:
                    if w.value is None:
                        await client.delete(w.key)
                    else:
                        await client.set(w.key, w.value, px=w.ttl_ms)
            except RedisError as exc:
                self._manager.record_failure(exc)
                _log.warning("write group aborted at %s: %s", w.key, exc)
            else:
                self._manager.record_success()

    async def _fenced_atomic(
        self, client: aioredis.Redis, writes: Sequence[Write], fence: Fence
    ) -> None:
        args: list[str | int] = [fence.token]
        for w in writes:
            args += [w.value or "", w.ttl_ms, "1" if w.value is None else "0"]
        try:
            landed = await client.eval(
                _FENCED_WRITE, 1 + len(writes), fence.key, *(w.key for w in writes), *args
            )
        except RedisError as exc:
            self._manager.record_failure(exc)
            raise StoreError(f"write failed: {exc}") from exc
        self._manager.record_success()
        if not landed:
            raise FenceLost(f"{fence.key} no longer holds this writer's token")

    async def read_chain(
        self, client: aioredis.Redis | None, keys: Sequence[str]
    ) -> list[str | None]:
        """GET each key; legacy stops at the first error (later keys read as missing)."""
        values: list[str | None] = [None] * len(keys)
        if client is None or not keys:
            return values
        if self._atomic:
            try:
                got = await client.mget(list(keys))
            except RedisError as exc:
                self._manager.record_failure(exc)
                raise StoreError(f"read failed: {exc}") from exc
            return [_text(v) for v in got]
        for i, key in enumerate(keys):
            try:
                values[i] = _text(await client.get(key))
            except RedisError as exc:
                self._manager.record_failure(exc)
                _log.warning("read aborted at %s: %s", key, exc)
                break
        return values

    async def get(self, client: aioredis.Redis | None, key: str) -> str | None:
        return (await self.read_chain(client, [key]))[0]

    async def get_and_refresh(
        self, client: aioredis.Redis | None, key: str, value: str, ttl_ms: int
    ) -> str | None:
        """SET key value PX ttl XX GET: extend an existing lease only; the previous
        value (None: it had lapsed and nothing was written). Errors raise."""
        if client is None:
            raise StoreError("no redis client")
        try:
            old = await client.set(key, value, px=ttl_ms, xx=True, get=True)
        except RedisError as exc:
            self._manager.record_failure(exc)
            raise StoreError(f"lease refresh failed: {exc}") from exc
        return _text(old)

    async def set_value(
        self, client: aioredis.Redis | None, key: str, value: str, ttl_ms: int
    ) -> None:
        """SET key value PX ttl (a new lease); errors raise."""
        if client is None:
            raise StoreError("no redis client")
        try:
            await client.set(key, value, px=ttl_ms)
        except RedisError as exc:
            self._manager.record_failure(exc)
            raise StoreError(f"lease write failed: {exc}") from exc


def _queue(pipe: aioredis.client.Pipeline, w: Write) -> None:
    if w.value is None:
        pipe.delete(w.key)
    else:
        pipe.set(w.key, w.value, px=w.ttl_ms)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
