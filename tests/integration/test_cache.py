from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rose_cart.adapters.cache import InMemoryCache, RedisCache
from rose_cart.bootstrap import Overrides, build_services
from rose_cart.config import Settings
from rose_cart.domain.identity import CartIdentity
from rose_cart.ports import Cache, CalendarService
from rose_cart.services.cart import summary_version_key
from rose_cart.services.container import Services
from tests.fakes import FakeBlog, FakeCalendar, FakeClock, FakeMarket, FakePaymentProvider
from tests.gates import GatedCalendar
from tests.unit.services.conftest import CATALOG

ANON = CartIdentity(session_id="anon-1")


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


def cart_services(
    database_url: str, cache: Cache, calendar: CalendarService | None = None
) -> tuple[Services, FakeMarket]:
    market = FakeMarket(CATALOG)
    services = build_services(
        Settings(database_url=database_url, migrate_on_start=False),
        Overrides(
            market=market,
            blog=FakeBlog(),
            calendar=calendar or FakeCalendar(),
            cache=cache,
            clock=FakeClock(),
            payments=FakePaymentProvider(),
        ),
    )
    return services, market


async def test_a_summary_read_overtaken_by_a_change_is_never_served_after_it_on_redis(
    redis_url: str, database_url: str
) -> None:
    cache = RedisCache(redis_url, prefix="test:")
    calendar = GatedCalendar()
    services, market = cart_services(database_url, cache, calendar)
    cart = services.cart
    try:
        await cart.add(ANON, 1, 1)

        async def held_over(change: Callable[[], Awaitable[object]]) -> int:
            """Hold a summary read after it has read the cart, make the change, let the
            read store its summary, and return the count it saw."""
            calendar.reached, calendar.gate = asyncio.Event(), asyncio.Event()
            await cart.forget_summary(ANON)  # so that the read has to look at the cart
            read = asyncio.create_task(cart.summary(ANON))
            await asyncio.wait_for(calendar.reached.wait(), 5)
            await change()
            calendar.gate.set()
            count = (await read)["count"]
            assert isinstance(count, int)
            return count

        assert await held_over(lambda: cart.add(ANON, 1, 1)) == 1
        assert (await cart.summary(ANON))["count"] == 2
        calls = market.product_calls
        assert (await cart.summary(ANON))["count"] == 2  # a hit: no sibling asked
        assert market.product_calls == calls

        async def change_then_evict_the_version() -> None:
            await cart.add(ANON, 1, 1)
            await cache.delete(summary_version_key(ANON))

        assert await held_over(change_then_evict_the_version) == 2
        assert (await cart.summary(ANON))["count"] == 3
    finally:
        await services.aclose()
        await cache.aclose()


async def test_summary_with_redis_down_is_read_from_the_cart_every_time(
    database_url: str,
) -> None:
    cache = RedisCache("redis://127.0.0.1:1/0")
    services, _ = cart_services(database_url, cache)
    try:
        await services.cart.add(ANON, 1, 1)
        assert (await services.cart.summary(ANON))["count"] == 1
        await services.cart.add(ANON, 1, 2)
        assert (await services.cart.summary(ANON))["count"] == 3
    finally:
        await services.aclose()
        await cache.aclose()


async def test_redis_cache_pipelines_concurrent_calls_in_order(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix="test:")
    try:
        await cache.set_many({f"k{i}": f"v{i}" for i in range(50)}, ttl_seconds=60)
        got = await asyncio.gather(*(cache.get_many([f"k{i}", "none"]) for i in range(50)))
        assert got == [[f"v{i}", None] for i in range(50)]
        await cache.delete(*(f"k{i}" for i in range(50)))
        assert await cache.get_many(["k0", "k49"]) == [None, None]
    finally:
        await cache.aclose()
