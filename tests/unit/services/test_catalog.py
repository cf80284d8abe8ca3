"""The catalog in front of the market: what a checkout's fresh read writes to the cache."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from rose_cart.services.catalog import Catalog
from tests.fakes import FakeBlog, FakeCache, FakeMarket, product


class CountingCache(FakeCache):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[str]] = []

    async def set_many(self, items: Mapping[str, str], ttl_seconds: int) -> None:
        self.writes.append(sorted(items))
        await super().set_many(items, ttl_seconds)


async def test_a_fresh_read_writes_a_product_to_the_cache_only_when_it_changed() -> None:
    market, cache = FakeMarket([product(1, "4.50")]), CountingCache()
    catalog = Catalog(market, FakeBlog(), cache, ttl_seconds=300)
    for _ in range(3):  # checkouts of the same loaf, one after another
        assert (await catalog.products([1], fresh=True))[1].unit_price == Decimal("4.50")
    assert market.product_calls == 3  # each checkout asks the market itself
    assert cache.writes == [["product:1"]]

    market.products[1] = product(1, "4.80")  # the baker changes the price
    assert (await catalog.products([1], fresh=True))[1].unit_price == Decimal("4.80")
    assert cache.writes == [["product:1"], ["product:1"]]
    # The cart and the summary, which read the cache, show the new price at once.
    assert (await catalog.products([1]))[1].unit_price == Decimal("4.80")


async def test_an_entry_dropped_from_the_cache_is_read_from_the_market_again() -> None:
    market, cache = FakeMarket([product(1, "4.50")]), CountingCache()
    catalog = Catalog(market, FakeBlog(), cache, ttl_seconds=300)
    await catalog.products([1], fresh=True)
    await cache.delete("product:1")  # the market's change notice, or the entry expired
    await catalog.products([1], fresh=True)  # unchanged: not written again
    calls = market.product_calls
    assert (await catalog.products([1]))[1].unit_price == Decimal("4.50")
    assert market.product_calls == calls + 1 and "product:1" in cache.data
