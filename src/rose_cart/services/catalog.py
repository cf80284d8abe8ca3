"""Read-through cache over the market and blog siblings: products, marketplaces, pages."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


class Catalog:
    """Products and where they belong, one sibling call per kind per request at most.

    Cached per id so that add-to-cart and the cart page cost one cache round trip each on
    a warm cache. Unknown ids are not cached, so a product published a moment later shows.
    """

    def __init__(
        self, market: MarketService, blog: BlogService, cache: Cache, ttl_seconds: int
    ) -> None:
        self.market = market
        self.blog = blog
        self.cache = cache
        self.ttl = ttl_seconds

    async def products(self, ids: Sequence[int], *, fresh: bool = False) -> dict[int, Product]:
        """Products by id. ``fresh`` asks the market itself (and refreshes the cache): what
        checkout does, so nobody pays a price the cache remembered."""
        return await self._cached(
            "product", ids, self.market.products_by_ids, _product, lambda p: p.id, fresh=fresh
        )

    async def product(self, product_id: int) -> Product | None:
        return (await self.products([product_id])).get(product_id)

    async def marketplaces(self, ids: Sequence[int]) -> dict[int, MarketPlace]:
        return await self._cached(
            "marketplace",
            ids,
            self.market.marketplaces_by_ids,
            lambda raw: MarketPlace(**json.loads(raw)),
            lambda m: m.id,
        )

    async def posts(self, ids: Sequence[int]) -> dict[int, Post]:
        return await self._cached(
            "post",
            ids,
            self.blog.posts_by_ids,
            lambda raw: Post(**json.loads(raw)),
            lambda p: p.id,
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
    ) -> dict[Any, Any]:
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, Any] = {}
        missing: list[int] = []
        cached: list[str | None] = (
            [None] * len(wanted)
            if fresh
            else await self.cache.get_many([f"{kind}:{i}" for i in wanted])
        )
        for item_id, raw in zip(wanted, cached, strict=True):
            if raw is None:
                missing.append(item_id)
            else:
                found[item_id] = load(raw)
        if missing:
            for obj in await fetch(missing):
                found[key_of(obj)] = obj
                await self.cache.set(f"{kind}:{key_of(obj)}", _dump(obj), self.ttl)
        return found
