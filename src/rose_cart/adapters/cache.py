"""Caches: in-memory (one process, standalone) and Redis (shared by every worker)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class InMemoryCache:
    """A dict with expiry. Correct only within one process, which is all standalone has."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._max = max_entries

    async def get(self, key: str) -> str | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        expires, value = hit
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        if len(self._data) >= self._max:
            self._data.clear()  # crude, but bounded memory matters more than hit rate here
        self._data[key] = (time.monotonic() + ttl_seconds, value)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)


class RedisCache:
    """Redis-backed cache. A Redis outage degrades to misses, never to a visitor's error."""

    def __init__(self, url: str, prefix: str = "rose-cart:") -> None:
        self._redis: Redis = Redis.from_url(
            url, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            log.warning("cache get failed: %s", type(exc).__name__)
            return None
        return value if value is None else str(value)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        try:
            values = await self._redis.mget([self._prefix + k for k in keys])
        except (RedisError, OSError) as exc:
            log.warning("cache get failed: %s", type(exc).__name__)
            return [None] * len(keys)
        return [None if v is None else str(v) for v in values]

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        try:
            await self._redis.set(self._prefix + key, value, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            log.warning("cache set failed: %s", type(exc).__name__)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._redis.delete(*(self._prefix + k for k in keys))
        except (RedisError, OSError) as exc:
            log.warning("cache delete failed: %s", type(exc).__name__)

    async def aclose(self) -> None:
        await self._redis.aclose()
