"""Hand-written fakes for the ports, for unit tests. No mocks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rose_cart.domain.errors import (
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    SiblingUnavailable,
    SoldOut,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money
from rose_cart.ports import (
    CalendarEntry,
    CheckoutRequest,
    CheckoutState,
    HostedCheckout,
    MarketPlace,
    PaymentCredentials,
    Post,
    Product,
    ProviderTransaction,
    Ticket,
)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


def product(
    pid: int,
    price: str = "4.50",
    *,
    market: int = 1,
    currency: str = "GBP",
    available: bool = True,
    max_per_order: int | None = None,
    title: str | None = None,
) -> Product:
    return Product(
        id=pid,
        slug=f"product-{pid}",
        title=title or f"Product {pid}",
        image=None,
        unit_price=Decimal(price),
        currency=currency,
        market_place_id=market,
        available=available,
        max_per_order=max_per_order,
    )


BAKERY = Post(101, "bakery", "Bakery", True)
GARDEN = Post(102, "garden", "Garden", True)


class FakeMarket:
    def __init__(self, products: Sequence[Product] = ()) -> None:
        self.products = {p.id: p for p in products}
        self.marketplaces = {
            1: MarketPlace(1, "bakery-counter", "Bakery counter", "page", 101),
            2: MarketPlace(2, "garden-stall", "Garden stall", "page", 102),
            3: MarketPlace(3, "coop-shop", "Co-op shop", "site", None),
        }
        self.down = False
        self.product_calls = 0

    async def products_by_ids(self, ids: Sequence[int]) -> list[Product]:
        self.product_calls += 1
        if self.down:
            raise SiblingUnavailable()
        return [self.products[i] for i in ids if i in self.products]

    async def marketplaces_by_ids(self, ids: Sequence[int]) -> list[MarketPlace]:
        if self.down:
            raise SiblingUnavailable()
        return [self.marketplaces[i] for i in ids if i in self.marketplaces]


class FakeBlog:
    def __init__(self, posts: Sequence[Post] = (BAKERY, GARDEN)) -> None:
        self.posts = {p.id: p for p in posts}

    async def posts_by_ids(self, ids: Sequence[int]) -> list[Post]:
        return [self.posts[i] for i in ids if i in self.posts]

    async def post_by_slug(self, slug: str) -> Post | None:
        return next((p for p in self.posts.values() if p.slug == slug), None)


class FakeCalendar:
    """Records what the cart asked of the events service."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.sold_out = False
        self.tickets: list[Ticket] = []
        # The events service is unreachable when asked to adopt a visitor's bookings.
        self.adoption_down = False

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]:
        return []

    async def pending_tickets(self, user_id: int) -> list[Ticket]:
        return list(self.tickets)

    async def claim_entries_for_order(
        self, order_id: int, identity: CartIdentity, page_post_id: int | None = None
    ) -> None:
        self.calls.append(("claim_entries", order_id))

    async def claim_tickets_for_order(
        self, order_id: int, user_id: int, page_post_id: int | None = None
    ) -> None:
        if self.sold_out:
            raise SoldOut()
        self.calls.append(("claim_tickets", order_id))

    async def confirm_entries_for_order(self, order_id: int) -> None:
        self.calls.append(("confirm_entries", order_id))

    async def confirm_tickets_for_order(self, order_id: int) -> None:
        self.calls.append(("confirm_tickets", order_id))

    async def release_for_order(self, order_id: int) -> None:
        self.calls.append(("release", order_id))

    async def entries_for_order(self, order_id: int) -> list[CalendarEntry]:
        return []

    async def tickets_for_order(self, order_id: int) -> list[Ticket]:
        return []

    async def adopt_for_user(self, user_id: int, session_id: str) -> None:
        if self.adoption_down:
            raise SiblingUnavailable()
        self.calls.append(("adopt", (user_id, session_id)))


class FakeCache:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self.data.get(k) for k in keys]

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self.data[key] = value

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self.data.pop(key, None)


class FakePaymentProvider:
    """A provider whose checkouts live in a dict; tests decide what SumUp says."""

    def __init__(self) -> None:
        self.checkouts: dict[str, dict[str, object]] = {}
        self.by_reference: dict[str, str] = {}
        self.create_calls = 0
        self.get_calls = 0
        self.fail_create: Exception | None = None
        self.fail_get: Exception | None = None
        self.create_delay = 0.0
        self.deactivated: list[str] = []
        self._ids = itertools.count(1)

    async def create_checkout(
        self, request: CheckoutRequest, credentials: PaymentCredentials
    ) -> HostedCheckout:
        self.create_calls += 1
        if self.create_delay:
            await asyncio.sleep(self.create_delay)
        if self.fail_create is not None:
            raise self.fail_create
        if request.reference in self.by_reference:
            cid = self.by_reference[request.reference]
        else:
            cid = f"chk_{next(self._ids)}"
            self.by_reference[request.reference] = cid
            self.checkouts[cid] = {
                "status": "PENDING",
                "request": request,
                "credentials": credentials,
                "transactions": (),
            }
        return HostedCheckout(cid, f"https://pay.example/{cid}")

    async def get_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        self.get_calls += 1
        if self.fail_get is not None:
            raise self.fail_get
        data = self.checkouts.get(provider_checkout_id)
        if data is None:
            raise PaymentProviderUnavailable("no such checkout")
        request = data["request"]
        assert isinstance(request, CheckoutRequest)
        return CheckoutState(
            provider_checkout_id,
            str(data["status"]),
            request.reference,
            request.amount.amount,
            request.amount.currency,
            data["transactions"],
        )  # type: ignore[arg-type]

    def settle(self, checkout_id: str, status: str = "PAID") -> None:
        data = self.checkouts[checkout_id]
        data["status"] = status
        request = data["request"]
        assert isinstance(request, CheckoutRequest)
        if status == "PAID":
            data["transactions"] = (
                ProviderTransaction(
                    f"txn_{checkout_id}",
                    f"TC{checkout_id}",
                    "SUCCESSFUL",
                    request.amount.amount,
                    request.amount.currency,
                ),
            )

    async def deactivate_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        data = self.checkouts[provider_checkout_id]
        if data["status"] == "PAID":
            raise PaymentProviderRejected("already paid")
        data["status"] = "EXPIRED"
        self.deactivated.append(provider_checkout_id)
        return await self.get_checkout(provider_checkout_id, credentials)

    async def refund(
        self, transaction_id: str, amount: Money | None, credentials: PaymentCredentials
    ) -> None:
        return None
