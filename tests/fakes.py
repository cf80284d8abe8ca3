"""Hand-written fakes for the ports, for unit tests. No mocks.

Every fake port refuses to be called while the calling task holds a database transaction
open (``GuardedUnitOfWorkFactory``): remote calls inside a transaction hold row locks (and
SQLite's one writer) for as long as a sibling or SumUp takes to answer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Collection, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

from rose_cart.domain.errors import (
    CartChanged,
    PaymentProviderRejected,
    SiblingUnavailable,
    SoldOut,
    TicketTypeNotFound,
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
        self.writes_alone = inner.writes_alone

    @property
    def engine(self) -> Any:
        return getattr(self.inner, "engine", None)

    def __call__(self, *, one_statement: bool = False) -> Any:
        return _GuardedUnitOfWork(self.inner(one_statement=one_statement))


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


@dataclass
class FakeTicketType:
    """A ticket type of one calendar entry; ``capacity`` None means unlimited. ``sold_elsewhere``
    counts tickets other buyers hold (reserved, confirmed or checked in)."""

    id: int
    entry_id: int
    entry_name: str
    name: str
    cost: Decimal
    capacity: int | None = None
    page_id: int | None = 101
    currency: str = "GBP"
    sold_elsewhere: int = 0


@dataclass
class _Held:
    """A booking or a ticket the events service holds for someone (``owner``: the identity's
    key, or None for tickets any user sees), and the order that claimed it."""

    item: Any  # CalendarEntry | Ticket
    owner: str | None
    order_id: int | None = None


class FakeCalendar:
    """A small in-memory events service behind the ``CalendarService`` contract.

    Bookings (``book``) and pending tickets (``hold_tickets``) belong to a visitor; claims
    move them to an order (entries ``ordered``, tickets ``reserved``), confirmations onwards,
    a release back to the cart. A claim re-checks ticket capacity and takes all or nothing;
    claiming again after a release takes back exactly what the order had.

    It also records what the cart asked of it (``calls``; ``reads`` counts the cart reads).
    ``down`` makes every change, claim, confirmation and release fail as an unreachable
    service would (reads still answer); ``sold_out`` makes every ticket claim fail.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.reads: dict[str, int] = {"pending_entries": 0, "pending_tickets": 0}
        self.sold_out = False
        self.down = False
        # The events service is unreachable when asked to adopt a visitor's bookings.
        self.adoption_down = False
        self.ticket_types: dict[int, FakeTicketType] = {}
        self.bookings: list[_Held] = []
        self.held_tickets: list[_Held] = []
        # What each order claimed, so a claim after a release takes back exactly that.
        self.entry_claims: dict[int, list[int]] = {}
        self.ticket_claims: dict[int, list[int]] = {}
        self._ticket_ids = itertools.count(1)

    # ----------------------------------------------------------------- test set-up

    def book(
        self,
        identity: CartIdentity,
        entry_id: int,
        name: str,
        cost: str = "10.00",
        *,
        page_id: int | None = 101,
        start_at: datetime | None = None,
        currency: str = "GBP",
    ) -> CalendarEntry:
        """A pending booking in the visitor's cart."""
        start = start_at or datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
        entry = CalendarEntry(
            id=entry_id,
            name=name,
            start_at=start,
            end_at=start + timedelta(hours=2),
            cost=Decimal(cost),
            currency=currency,
            calendar_container_type="page" if page_id is not None else "site",
            calendar_container_id=page_id,
            state="pending",
        )
        self.bookings.append(_Held(entry, identity.owner().key))
        return entry

    def add_ticket_type(
        self,
        type_id: int,
        entry_id: int,
        entry_name: str,
        name: str = "Adult",
        cost: str = "12.00",
        *,
        capacity: int | None = None,
        page_id: int | None = 101,
        currency: str = "GBP",
    ) -> FakeTicketType:
        ticket_type = FakeTicketType(
            type_id, entry_id, entry_name, name, Decimal(cost), capacity, page_id, currency
        )
        self.ticket_types[type_id] = ticket_type
        return ticket_type

    def hold_tickets(self, user_id: int, type_id: int, quantity: int) -> None:
        """Put ``quantity`` pending tickets of the type in the user's cart (not sold yet)."""
        for _ in range(quantity):
            self.held_tickets.append(
                _Held(self._ticket(self.ticket_types[type_id]), f"u:{user_id}")
            )

    def left(self, type_id: int) -> int | None:
        """How many of the type can still be claimed (None: no limit)."""
        ticket_type = self.ticket_types[type_id]
        if ticket_type.capacity is None:
            return None
        sold = ticket_type.sold_elsewhere + sum(
            1
            for h in self.held_tickets
            if h.item.ticket_type_id == type_id and h.item.state != "pending"
        )
        return max(ticket_type.capacity - sold, 0)

    @property
    def tickets(self) -> list[Ticket]:
        """The pending tickets, whoever holds them."""
        return [h.item for h in self.held_tickets if h.item.state == "pending"]

    @tickets.setter
    def tickets(self, tickets: list[Ticket]) -> None:
        """Pending tickets every user sees in their cart."""
        self.held_tickets = [h for h in self.held_tickets if h.item.state != "pending"]
        self.held_tickets += [_Held(t, None) for t in tickets]

    def _ticket(self, ticket_type: FakeTicketType) -> Ticket:
        return Ticket(
            id=next(self._ticket_ids),
            entry_id=ticket_type.entry_id,
            entry_name=ticket_type.entry_name,
            ticket_type=ticket_type.name,
            ticket_type_id=ticket_type.id,
            cost=ticket_type.cost,
            currency=ticket_type.currency,
            calendar_container_type="page" if ticket_type.page_id is not None else "site",
            calendar_container_id=ticket_type.page_id,
        )

    # ----------------------------------------------------------------- bookkeeping

    def _call(self, name: str, arg: object) -> None:
        outside_transaction(f"calendar.{name}")
        if self.down:
            raise SiblingUnavailable("The events service is not answering.")
        self.calls.append((name, arg))

    def count(self, name: str, order_id: int) -> int:
        return sum(1 for call in self.calls if call == (name, order_id))

    @staticmethod
    def _set_state(held: _Held, state: str, order_id: int | None) -> None:
        held.item = replace(held.item, state=state)
        held.order_id = order_id

    def _pending_tickets_of(self, user_id: int) -> list[_Held]:
        return [
            h
            for h in self.held_tickets
            if h.item.state == "pending" and h.owner in (None, f"u:{user_id}")
        ]

    # ----------------------------------------------------------------- the port

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]:
        outside_transaction("calendar.pending_entries")
        self.reads["pending_entries"] += 1
        key = identity.owner().key
        return [b.item for b in self.bookings if b.owner == key and b.item.state == "pending"]

    async def pending_tickets(self, user_id: int) -> list[Ticket]:
        outside_transaction("calendar.pending_tickets")
        self.reads["pending_tickets"] += 1
        return [h.item for h in self._pending_tickets_of(user_id)]

    async def remove_pending_entry(self, identity: CartIdentity, entry_id: int) -> bool:
        self._call("remove_entry", entry_id)
        key = identity.owner().key
        for b in self.bookings:
            if b.owner == key and b.item.id == entry_id and b.item.state == "pending":
                self.bookings.remove(b)
                return True
        return False

    async def set_pending_tickets(self, user_id: int, ticket_type_id: int, quantity: int) -> int:
        self._call("set_tickets", (ticket_type_id, quantity))
        ticket_type = self.ticket_types.get(ticket_type_id)
        if ticket_type is None:
            raise TicketTypeNotFound()
        left = self.left(ticket_type_id)
        if left is not None and quantity > left:
            raise SoldOut(
                f"Only {left} left of the {ticket_type.name} tickets for {ticket_type.entry_name}.",
                entry_id=ticket_type.entry_id,
                ticket_type_id=ticket_type_id,
                left=left,
            )
        mine = [
            h for h in self._pending_tickets_of(user_id) if h.item.ticket_type_id == ticket_type_id
        ]
        for held in mine[quantity:]:
            self.held_tickets.remove(held)
        for _ in range(quantity - len(mine)):
            self.held_tickets.append(_Held(self._ticket(ticket_type), f"u:{user_id}"))
        return quantity

    async def claim_entries_for_order(
        self,
        order_id: int,
        identity: CartIdentity,
        page_post_id: int | None = None,
        *,
        entry_ids: Collection[int] | None = None,
    ) -> None:
        self._call("claim_entries", order_id)
        if any(b.order_id == order_id for b in self.bookings):
            return  # claimed already
        key = identity.owner().key
        pending = [b for b in self.bookings if b.owner == key and b.item.state == "pending"]
        if order_id in self.entry_claims:  # released earlier: exactly what it had
            wanted = [b for b in pending if b.item.id in self.entry_claims[order_id]]
        else:
            wanted = [b for b in pending if b.item.calendar_container_id == page_post_id]
            if entry_ids is not None:
                wanted = [b for b in wanted if b.item.id in entry_ids]
                if {b.item.id for b in wanted} != set(entry_ids):
                    raise CartChanged()
            self.entry_claims[order_id] = [b.item.id for b in wanted]
        for b in wanted:
            self._set_state(b, "ordered", order_id)

    async def claim_tickets_for_order(
        self,
        order_id: int,
        user_id: int,
        page_post_id: int | None = None,
        *,
        ticket_counts: Mapping[int, int] | None = None,
    ) -> None:
        outside_transaction("calendar.claim_tickets_for_order")
        if self.sold_out:
            raise SoldOut()
        self._call("claim_tickets", order_id)
        if any(h.order_id == order_id for h in self.held_tickets):
            return  # claimed already
        pending = self._pending_tickets_of(user_id)
        if order_id in self.ticket_claims:  # released earlier: exactly what it had
            wanted = [h for h in pending if h.item.id in self.ticket_claims[order_id]]
        else:
            wanted = [h for h in pending if h.item.calendar_container_id == page_post_id]
            if ticket_counts is not None:
                taken: list[_Held] = []
                for type_id, number in ticket_counts.items():
                    of_type = [h for h in wanted if h.item.ticket_type_id == type_id]
                    if len(of_type) < number:
                        raise CartChanged()
                    taken += of_type[:number]
                wanted = taken
        asked: dict[int, int] = {}
        for h in wanted:
            if h.item.ticket_type_id is not None:
                asked[h.item.ticket_type_id] = asked.get(h.item.ticket_type_id, 0) + 1
        for type_id, number in asked.items():
            left = self.left(type_id) if type_id in self.ticket_types else None
            if left is not None and number > left:
                ticket_type = self.ticket_types[type_id]
                raise SoldOut(
                    f"Only {left} left of the {ticket_type.name} tickets for "
                    f"{ticket_type.entry_name}; you asked for {number}.",
                    entry_id=ticket_type.entry_id,
                    ticket_type_id=type_id,
                    left=left,
                )
        self.ticket_claims.setdefault(order_id, [h.item.id for h in wanted])
        for h in wanted:
            self._set_state(h, "reserved", order_id)

    async def confirm_entries_for_order(self, order_id: int) -> None:
        self._call("confirm_entries", order_id)
        for b in self.bookings:
            if b.order_id == order_id and b.item.state == "ordered":
                self._set_state(b, "provisional", order_id)

    async def confirm_tickets_for_order(self, order_id: int) -> None:
        self._call("confirm_tickets", order_id)
        for h in self.held_tickets:
            if h.order_id == order_id and h.item.state == "reserved":
                self._set_state(h, "confirmed", order_id)

    async def release_for_order(self, order_id: int) -> None:
        self._call("release", order_id)
        for held in [*self.bookings, *self.held_tickets]:
            if held.order_id == order_id:
                self._set_state(held, "pending", None)

    async def entries_for_order(self, order_id: int) -> list[CalendarEntry]:
        outside_transaction("calendar.entries_for_order")
        return [b.item for b in self.bookings if b.order_id == order_id]

    async def tickets_for_order(self, order_id: int) -> list[Ticket]:
        outside_transaction("calendar.tickets_for_order")
        return [h.item for h in self.held_tickets if h.order_id == order_id]

    async def adopt_for_user(self, user_id: int, session_id: str) -> None:
        if self.adoption_down:
            raise SiblingUnavailable()
        self._call("adopt", (user_id, session_id))
        anonymous = CartIdentity(session_id=session_id).key
        for b in self.bookings:
            if b.owner == anonymous:
                b.owner = f"u:{user_id}"


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

    async def set_many(self, items: Mapping[str, str], ttl_seconds: int) -> None:
        self.data.update(items)

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
