"""Read-through cache over the market and blog siblings: products, marketplaces, pages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from rose_cart.domain.cart import PageRef
from rose_cart.ports import BlogService, Cache, MarketPlace, MarketService, Post, Product


def _dump(obj: Any) -> str:
    return json.dumps(asdict(obj), default=str)


def _product(raw: str) -> Product:
    data = json.loads(raw)
    data["unit_price"] = Decimal(data["unit_price"])
    if data.get("regular_price") is not None:
        data["regular_price"] = Decimal(data["regular_price"])
    return Product(**data)


class LocalMemo:
    """A short-lived per-process memo in front of the shared cache, for what may be a few
    seconds old: bounded, and emptied whole when full."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._data: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < self._clock():
            del self._data[key]
            return None
        return hit[1]

    def put(self, key: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = (self._clock() + self.ttl, value)


class Catalog:
    """Products and where they belong, one sibling call per kind per request at most.

    Cached per id in the shared cache, so that a warm cart page costs one cache round trip
    for its products; misses are stored in one round trip too. Unknown ids are not cached,
    so a product published a moment later shows.

    In front of the shared cache, each process keeps for ``local_ttl_seconds``: what an
    add looks up (title, availability, per-order limit: a price is never taken from it),
    marketplaces and pages (which change rarely). Prices shown in the cart and the summary
    always come from the shared cache, so a sibling that drops a product's entry there is
    heard at once; checkout reads the market itself.
    """

    def __init__(
        self,
        market: MarketService,
        blog: BlogService,
        cache: Cache,
        ttl_seconds: int,
        local_ttl_seconds: float = 5.0,
    ) -> None:
        self.market = market
        self.blog = blog
        self.cache = cache
        self.ttl = ttl_seconds
        self.local = LocalMemo(local_ttl_seconds)
        # Cached text -> parsed object: the same text is parsed once per process.
        self._parsed = LocalMemo(max(self.ttl, 1), max_entries=5_000)
        # Key -> what this process wrote to the shared cache there a moment ago: a
        # checkout's fresh read that finds the same need not write it again.
        self._written = LocalMemo(local_ttl_seconds)

    async def products(self, ids: Sequence[int], *, fresh: bool = False) -> dict[int, Product]:
        """Products by id. ``fresh`` asks the market itself (and refreshes the cache): what
        checkout does, so nobody pays a price the cache remembered."""
        return await self._cached(
            "product", ids, self.market.products_by_ids, _product, lambda p: p.id, fresh=fresh
        )

    async def product(self, product_id: int) -> Product | None:
        """One product, for an add or a quantity change: what they need of it (title,
        availability, limit) may be a few seconds old."""
        key = f"product:{product_id}"
        found: Product | None = self.local.get(key)
        if found is None:
            found = (await self.products([product_id])).get(product_id)
            if found is not None:
                self.local.put(key, found)
        return found

    async def marketplaces(self, ids: Sequence[int]) -> dict[int, MarketPlace]:
        return await self._cached(
            "marketplace",
            ids,
            self.market.marketplaces_by_ids,
            lambda raw: MarketPlace(**json.loads(raw)),
            lambda m: m.id,
            local=True,
        )

    async def posts(self, ids: Sequence[int]) -> dict[int, Post]:
        return await self._cached(
            "post",
            ids,
            self.blog.posts_by_ids,
            lambda raw: Post(**json.loads(raw)),
            lambda p: p.id,
            local=True,
        )

    async def page_by_slug(self, slug: str) -> Post | None:
        post = await self.blog.post_by_slug(slug)
        return post if post is not None and post.is_page else None

    async def pages_for_products(self, products: Sequence[Product]) -> dict[int, PageRef | None]:
        """Product id -> the page that owns its marketplace (None for site-level ones)."""
        markets = await self.marketplaces(sorted({p.market_place_id for p in products}))
        page_ids = sorted(
            {
                m.container_id
                for m in markets.values()
                if m.container_type == "page" and m.container_id is not None
            }
        )
        posts = await self.posts(page_ids)
        result: dict[int, PageRef | None] = {}
        for product in products:
            market = markets.get(product.market_place_id)
            post = posts.get(market.container_id) if market and market.container_id else None
            if market and market.container_type == "page" and post:
                result[product.id] = PageRef(post.id, post.slug, post.title)
            else:
                result[product.id] = None
        return result

    async def _cached(
        self,
        kind: str,
        ids: Sequence[int],
        fetch: Any,
        load: Any,
        key_of: Any,
        *,
        fresh: bool = False,
        local: bool = False,
    ) -> dict[Any, Any]:
        found: dict[int, Any] = {}
        wanted: list[int] = []
        for item_id in dict.fromkeys(int(i) for i in ids):
            memo = self.local.get(f"{kind}:{item_id}") if local and not fresh else None
            if memo is None:
                wanted.append(item_id)
            else:
                found[item_id] = memo
        if not wanted:
            return found
        missing: list[int] = []
        cached: list[str | None] = (
            [None] * len(wanted)
            if fresh
            else await self.cache.get_many([f"{kind}:{i}" for i in wanted])
        )
        for item_id, raw in zip(wanted, cached, strict=True):
            if raw is None:
                missing.append(item_id)
                continue
            parsed = self._parsed.get(raw)
            if parsed is None:
                parsed = load(raw)
                self._parsed.put(raw, parsed)
            found[item_id] = parsed
            if local:
                self.local.put(f"{kind}:{item_id}", parsed)
        if missing:
            fetched = {key_of(obj): obj for obj in await fetch(missing)}
            found.update(fetched)
            if local:
                for item_id, obj in fetched.items():
                    self.local.put(f"{kind}:{item_id}", obj)
            # A miss is not in the cache; a fresh read did not look, and what this process
            # wrote there a moment ago stands for it.
            changed = {
                key: obj
                for key, obj in ((f"{kind}:{i}", o) for i, o in fetched.items())
                if not fresh or self._written.get(key) != obj
            }
            if changed:
                await self.cache.set_many(
                    {key: _dump(obj) for key, obj in changed.items()}, self.ttl
                )
                for key, obj in changed.items():
                    self._written.put(key, obj)
        return found
