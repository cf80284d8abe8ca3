"""Demo data that looks like a small co-op: a bakery, a community garden, and the co-op's
own shop."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

from rose_cart.ports import MarketPlace, Post, Product


def emoji_image(emoji: str, background: str) -> str:
    """A tiny SVG picture, so the demo needs no image files or network."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 100 100'>"
        f"<rect width='100' height='100' rx='12' fill='{background}'/>"
        f"<text x='50' y='64' font-size='48' text-anchor='middle'>{emoji}</text></svg>"
    )
    return "data:image/svg+xml;utf8," + quote(svg)


PAGES: list[Post] = [
    Post(101, "bakery", "Rose Ash Bakery", True, emoji_image("🍞", "#f6e7cf")),
    Post(102, "garden", "Community Garden", True, emoji_image("🌱", "#dcefd8")),
    Post(103, "events", "The Old Chapel Events Space", True, emoji_image("🎻", "#e4def3")),
]

MARKETPLACES: list[MarketPlace] = [
    MarketPlace(1, "bakery-counter", "Bakery counter", "page", 101),
    MarketPlace(2, "garden-stall", "Garden stall", "page", 102),
    MarketPlace(3, "coop-shop", "Co-op shop", "site", None),
]


def _p(
    pid: int,
    slug: str,
    title: str,
    price: str,
    market: int,
    emoji: str,
    bg: str,
    *,
    available: bool = True,
    max_per_order: int | None = None,
    regular: str | None = None,
) -> Product:
    return Product(
        id=pid,
        slug=slug,
        title=title,
        image=emoji_image(emoji, bg),
        unit_price=Decimal(price),
        currency="GBP",
        market_place_id=market,
        available=available,
        max_per_order=max_per_order,
        regular_price=Decimal(regular) if regular else None,
    )


BREAD, VEG, SHOP = "#f6e7cf", "#dcefd8", "#dde8f3"

PRODUCTS: list[Product] = [
    _p(1, "sourdough-loaf", "Sourdough loaf", "4.50", 1, "🍞", BREAD, max_per_order=10),
    _p(2, "seeded-rye", "Seeded rye", "4.20", 1, "🥖", BREAD, max_per_order=10),
    _p(
        3,
        "cinnamon-buns",
        "Cinnamon buns (box of 4)",
        "5.00",
        1,
        "🥐",
        BREAD,
        regular="6.00",
        max_per_order=6,
    ),
    _p(4, "focaccia", "Rosemary focaccia", "3.90", 1, "🫓", BREAD),
    _p(5, "hot-cross-buns", "Hot cross buns (seasonal)", "3.60", 1, "🥯", BREAD, available=False),
    _p(6, "veg-box", "Seasonal veg box", "15.00", 2, "🥕", VEG, max_per_order=2),
    _p(7, "salad-bag", "Salad leaves, 200 g", "2.50", 2, "🥬", VEG),
    _p(8, "eggs-six", "Free-range eggs (6)", "3.20", 2, "🥚", VEG, max_per_order=5),
    _p(9, "herb-bundle", "Herb bundle", "1.50", 2, "🌿", VEG, regular="2.00"),
    _p(10, "wildflower-honey", "Wildflower honey, 340 g", "7.50", 2, "🍯", VEG, max_per_order=3),
    _p(11, "tote-bag", "Rose Ash tote bag", "8.00", 3, "👜", SHOP),
    _p(12, "member-share", "Member share", "10.00", 3, "🤝", SHOP, max_per_order=1),
    _p(13, "coop-mug", "Co-op mug", "9.50", 3, "☕", SHOP),
    _p(14, "gift-card", "Gift card", "25.00", 3, "🎁", SHOP, max_per_order=5),
]
