"""Hand-written fakes for the ports, for unit tests. No mocks.

Every fake port refuses to be called while the calling task holds a database transaction
open (``GuardedUnitOfWorkFactory``): remote calls inside a transaction hold row locks (and
SQLite's one writer) for as long as a sibling or SumUp takes to answer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

from rose_cart.domain.errors import (
    PaymentProviderRejected,
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
    UnitOfWork,
    UnitOfWorkFactory,
)

_IN_TRANSACTION: ContextVar[bool] = ContextVar("in_transaction", default=False)
#: Port calls made inside a transaction; the test harness fails a test that made any.
VIOLATIONS: list[str] = []


def outside_transaction(call: str) -> None:
    if _IN_TRANSACTION.get():
        VIOLATIONS.append(call)
        raise AssertionError(f"{call} was called inside a database transaction")


class _GuardedUnitOfWork:
    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner

    async def __aenter__(self) -> UnitOfWork:
        tx = await self._inner.__aenter__()
        self._token = _IN_TRANSACTION.set(True)
        return tx

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _IN_TRANSACTION.reset(self._token)
        await self._inner.__aexit__(exc_type, exc, tb)


class GuardedUnitOfWorkFactory:
    """The real unit of work, marking the task as inside a transaction while it is open."""

    def __init__(self, inner: UnitOfWorkFactory) -> None:
        self.inner = inner

    @property
    def engine(self) -> Any:
        return getattr(self.inner, "engine", None)

    def __call__(self) -> Any:
        return _GuardedUnitOfWork(self.inner())


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
        outside_transaction("market.products_by_ids")
        self.product_calls += 1
        if self.down:
            raise SiblingUnavailable()
        return [self.products[i] for i in ids if i in self.products]

    async def marketplaces_by_ids(self, ids: Sequence[int]) -> list[MarketPlace]:
        outside_transaction("marketplaces_by_ids")
        if self.down:
            raise SiblingUnavailable()
        return [self.marketplaces[i] for i in ids if i in self.marketplaces]


class FakeBlog:
    def __init__(self, posts: Sequence[Post] = (BAKERY, GARDEN)) -> None:
        self.posts = {p.id: p for p in posts}

    async def posts_by_ids(self, ids: Sequence[int]) -> list[Post]:
        outside_transaction("posts_by_ids")
        return [self.posts[i] for i in ids if i in self.posts]

    async def post_by_slug(self, slug: str) -> Post | None:
        outside_transaction("post_by_slug")
        return next((p for p in self.posts.values() if p.slug == slug), None)


class FakeCalendar:
    """Records what the cart asked of the events service. ``down`` makes every claim,
    confirmation and release fail as an unreachable service would; ``sold_out`` makes
    ticket claims fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.sold_out = False
        self.down = False
        self.tickets: list[Ticket] = []
        # The events service is unreachable when asked to adopt a visitor's bookings.
        self.adoption_down = False

    def _call(self, name: str, arg: object) -> None:
        outside_transaction(f"calendar.{name}")
        if self.down:
            raise SiblingUnavailable("The events service is not answering.")
        self.calls.append((name, arg))

    def count(self, name: str, order_id: int) -> int:
        return sum(1 for call in self.calls if call == (name, order_id))

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]:
        outside_transaction("calendar.pending_entries")
        return []

    async def pending_tickets(self, user_id: int) -> list[Ticket]:
        outside_transaction("calendar.pending_tickets")
        return list(self.tickets)

    async def remove_pending_entry(self, identity: CartIdentity, entry_id: int) -> bool:
        self._call("remove_entry", entry_id)
        return False

    async def set_pending_tickets(self, user_id: int, ticket_type_id: int, quantity: int) -> int:
        self._call("set_tickets", (ticket_type_id, quantity))
        return 0

    async def claim_entries_for_order(
        self, order_id: int, identity: CartIdentity, page_post_id: int | None = None
    ) -> None:
        self._call("claim_entries", order_id)

    async def claim_tickets_for_order(
        self, order_id: int, user_id: int, page_post_id: int | None = None
    ) -> None:
        outside_transaction("calendar.claim_tickets_for_order")
        if self.sold_out:
            raise SoldOut()
        self._call("claim_tickets", order_id)

    async def confirm_entries_for_order(self, order_id: int) -> None:
        self._call("confirm_entries", order_id)

    async def confirm_tickets_for_order(self, order_id: int) -> None:
        self._call("confirm_tickets", order_id)

    async def release_for_order(self, order_id: int) -> None:
        self._call("release", order_id)

    async def entries_for_order(self, order_id: int) -> list[CalendarEntry]:
        outside_transaction("calendar.entries_for_order")
        return []

    async def tickets_for_order(self, order_id: int) -> list[Ticket]:
        outside_transaction("calendar.tickets_for_order")
        return []

    async def adopt_for_user(self, user_id: int, session_id: str) -> None:
        if self.adoption_down:
            raise SiblingUnavailable()
        self._call("adopt", (user_id, session_id))


class FakeSubscriber:
    """Keeps what it was sent; ``down`` refuses deliveries."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.down = False

    async def deliver(self, activity: dict[str, Any]) -> None:
        outside_transaction("subscriber.deliver")
        if self.down:
            raise SiblingUnavailable("The inbox is not answering.")
        self.received.append(activity)

    def types(self) -> list[str]:
        return [str(a["type"]) for a in self.received]


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


def _rejected(status: int, code: str, message: str) -> PaymentProviderRejected:
    return PaymentProviderRejected(
        provider_status=status, provider_error_code=code, provider_message=message
    )


class FakePaymentProvider:
    """A provider whose checkouts live in a dict; tests decide what SumUp says.

    It keeps SumUp's rules the cart relies on: a checkout belongs to the merchant whose key
    made it (another key gets 404), a duplicate reference is recovered only while PENDING,
    a paid checkout cannot be closed (409), an unknown one is 404.
    """

    def __init__(self) -> None:
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.by_reference: dict[str, str] = {}
        self.create_calls = 0
        self.get_calls = 0
        self.fail_create: Exception | None = None
        self.fail_get: Exception | None = None
        self.fail_deactivate: Exception | None = None
        self.fail_refund: Exception | None = None
        self.create_delay = 0.0
        self.deactivated: list[str] = []
        self.refunds: list[tuple[str, Money | None, str]] = []
        self.revoked_keys: set[str] = set()
        self._ids = itertools.count(1)

    def _check_key(self, credentials: PaymentCredentials) -> None:
        if credentials.api_key in self.revoked_keys:
            raise _rejected(401, "NOT_AUTHORIZED", "Unauthorized")

    def _visible(self, checkout_id: str, credentials: PaymentCredentials) -> dict[str, Any]:
        self._check_key(credentials)
        data = self.checkouts.get(checkout_id)
        if data is None or data["credentials"].merchant_code != credentials.merchant_code:
            raise _rejected(404, "NOT_FOUND", "Resource not found")
        return data

    async def create_checkout(
        self, request: CheckoutRequest, credentials: PaymentCredentials
    ) -> HostedCheckout:
        outside_transaction("provider.create_checkout")
        self.create_calls += 1
        if self.create_delay:
            await asyncio.sleep(self.create_delay)
        if self.fail_create is not None:
            raise self.fail_create
        self._check_key(credentials)
        if request.reference in self.by_reference:
            cid = self.by_reference[request.reference]
            existing = self.checkouts[cid]
            if existing["status"] != "PENDING" or existing["request"].amount != request.amount:
                raise _rejected(409, "DUPLICATED_CHECKOUT", "the reference is taken")
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
        outside_transaction("provider.get_checkout")
        self.get_calls += 1
        if self.fail_get is not None:
            raise self.fail_get
        data = self._visible(provider_checkout_id, credentials)
        request = data["request"]
        return CheckoutState(
            provider_checkout_id,
            str(data["status"]),
            request.reference,
            request.amount.amount,
            request.amount.currency,
            data["transactions"],
            data["credentials"].merchant_code,
        )

    def settle(self, checkout_id: str, status: str = "PAID") -> None:
        data = self.checkouts[checkout_id]
        data["status"] = status
        request = data["request"]
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

    def made_with(self, checkout_id: str) -> PaymentCredentials:
        credentials = self.checkouts[checkout_id]["credentials"]
        assert isinstance(credentials, PaymentCredentials)
        return credentials

    def live(self) -> list[str]:
        """Checkouts that could still take money."""
        return [c for c, d in self.checkouts.items() if d["status"] in {"PENDING", "FAILED"}]

    async def deactivate_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        outside_transaction("provider.deactivate_checkout")
        if self.fail_deactivate is not None:
            raise self.fail_deactivate
        data = self._visible(provider_checkout_id, credentials)
        if data["status"] == "PAID":
            raise _rejected(409, "CHECKOUT_PROCESSED", "Checkout is already processed")
        data["status"] = "EXPIRED"
        self.deactivated.append(provider_checkout_id)
        return await self.get_checkout(provider_checkout_id, credentials)

    async def refund(
        self, transaction_id: str, amount: Money | None, credentials: PaymentCredentials
    ) -> None:
        outside_transaction("provider.refund")
        if self.fail_refund is not None:
            raise self.fail_refund
        self._check_key(credentials)
        self.refunds.append((transaction_id, amount, credentials.merchant_code))
