from __future__ import annotations

import asyncio

from rose_cart.adapters.cache import InMemoryCache, RedisCache


async def test_redis_cache_round_trip_expiry_and_delete(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix="test:")
    try:
        assert await cache.get("a") is None
        await cache.set("a", "1", ttl_seconds=60)
        await cache.set("b", "2", ttl_seconds=1)
        assert await cache.get_many(["a", "b", "c"]) == ["1", "2", None]
        await cache.delete("a")
        assert await cache.get("a") is None
        await asyncio.sleep(1.2)
        assert await cache.get("b") is None
    finally:
        await cache.aclose()


async def test_redis_down_behaves_as_a_miss() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0")
    try:
        await cache.set("a", "1", 60)
        assert await cache.get("a") is None
        assert await cache.get_many(["a"]) == [None]
        await cache.delete("a")
    finally:
        await cache.aclose()


async def test_in_memory_cache() -> None:
    cache = InMemoryCache()
    await cache.set("k", "v", 60)
    assert await cache.get_many(["k", "x"]) == ["v", None]
    await cache.delete("k")
    assert await cache.get("k") is None
