"""Reference market, blog and events siblings, in-process, behind the same ports as the
HTTP clients of the real services."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rose_cart.domain.errors import CartChanged, SiblingUnavailable
from rose_cart.domain.identity import CartIdentity
from rose_cart.ports import CalendarEntry, MarketPlace, Post, Product, Ticket
from rose_cart.standalone import demo_data
from rose_cart.standalone.events import ReferenceCalendar

__all__ = [
    "EmptyCalendar",
    "ReferenceBlog",
    "ReferenceCalendar",
    "ReferenceMarket",
    "ReferenceSubscriber",
]


class ReferenceMarket:
    """Products and marketplaces. ``down`` makes it behave like an unreachable market."""

    def __init__(
        self,
        products: Sequence[Product] | None = None,
        marketplaces: Sequence[MarketPlace] | None = None,
    ) -> None:
        self.products = {p.id: p for p in (products or demo_data.PRODUCTS)}
        self.marketplaces = {m.id: m for m in (marketplaces or demo_data.MARKETPLACES)}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise SiblingUnavailable()

    async def products_by_ids(self, ids: Sequence[int]) -> list[Product]:
        self._check()
        return [self.products[i] for i in ids if i in self.products]

    async def marketplaces_by_ids(self, ids: Sequence[int]) -> list[MarketPlace]:
        self._check()
        return [self.marketplaces[i] for i in ids if i in self.marketplaces]

    def all_products(self) -> list[Product]:
        return sorted(self.products.values(), key=lambda p: p.id)


class ReferenceBlog:
    def __init__(self, posts: Sequence[Post] | None = None) -> None:
        self.posts = {p.id: p for p in (posts or demo_data.PAGES)}
        self.down = False

    async def posts_by_ids(self, ids: Sequence[int]) -> list[Post]:
        if self.down:
            raise SiblingUnavailable()
        return [self.posts[i] for i in ids if i in self.posts]

    async def post_by_slug(self, slug: str) -> Post | None:
        if self.down:
            raise SiblingUnavailable()
        return next((p for p in self.posts.values() if p.slug == slug), None)

    def pages(self) -> list[Post]:
        return [p for p in self.posts.values() if p.is_page]


class EmptyCalendar:
    """An events service with no calendars: every call is a correct answer for a calendar
    with nothing in it. For a cart run (or test) that needs no events; the standalone
    process mounts ``ReferenceCalendar``, the events sibling with its own tables."""

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]:
        return []

    async def pending_tickets(self, user_id: int) -> list[Ticket]:
        return []

    async def remove_pending_entry(self, identity: CartIdentity, entry_id: int) -> bool:
        return False

    async def set_pending_tickets(self, user_id: int, ticket_type_id: int, quantity: int) -> int:
        return 0

    async def claim_entries_for_order(
        self,
        order_id: int,
        identity: CartIdentity,
        page_post_id: int | None = None,
        *,
        entry_ids: Collection[int] | None = None,
    ) -> None:
        if entry_ids:
            raise CartChanged()  # it never had them

    async def claim_tickets_for_order(
        self,
        order_id: int,
        user_id: int,
        page_post_id: int | None = None,
        *,
        ticket_counts: Mapping[int, int] | None = None,
    ) -> None:
        if ticket_counts and any(ticket_counts.values()):
            raise CartChanged()

    async def confirm_entries_for_order(self, order_id: int) -> None:
        return None

    async def confirm_tickets_for_order(self, order_id: int) -> None:
        return None

    async def release_for_order(self, order_id: int) -> None:
        return None

    async def entries_for_order(self, order_id: int) -> list[CalendarEntry]:
        return []

    async def tickets_for_order(self, order_id: int) -> list[Ticket]:
        return []

    async def adopt_for_user(self, user_id: int, session_id: str) -> None:
        return None


class ReferenceSubscriber:
    """Stands for the federation service's inbox: keeps what it received, once per id.

    ``down`` makes it refuse deliveries, as an unreachable inbox would."""

    def __init__(self) -> None:
        self.received: dict[str, dict[str, Any]] = {}
        self.deliveries = 0
        self.down = False

    async def deliver(self, activity: dict[str, Any]) -> None:
        if self.down:
            raise SiblingUnavailable("The activity inbox is not answering.")
        self.deliveries += 1
        self.received.setdefault(str(activity["id"]), activity)
