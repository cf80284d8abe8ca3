"""Ports: the contracts between the cart's use cases and everything outside them.

DTOs are frozen dataclasses with Decimal money. Services depend only on these
Protocols; configuration picks the adapter behind each.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from rose_cart.domain.events import Activity
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money
from rose_cart.domain.order import Command, Order, OrderStatus

# --------------------------------------------------------------------------- siblings


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    slug: str
    title: str
    image: str | None
    unit_price: Decimal
    currency: str
    market_place_id: int
    available: bool = True
    max_per_order: int | None = None
    regular_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MarketPlace:
    id: int
    slug: str
    name: str
    container_type: str  # "page" or "site"
    container_id: int | None


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    slug: str
    title: str
    is_page: bool
    feature_image: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    id: int
    name: str
    start_at: datetime
    end_at: datetime | None
    cost: Decimal
    currency: str
    calendar_container_type: str
    calendar_container_id: int | None
    state: str


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    entry_id: int
    entry_name: str
    ticket_type: str
    ticket_type_id: int | None
    cost: Decimal
    currency: str
    calendar_container_type: str
    calendar_container_id: int | None
    state: str = "pending"
    start_at: datetime | None = None  # when the event begins
    order_id: int | None = None


class MarketService(Protocol):
    """The market sibling: products and the marketplaces (owned by pages) they live in.

    Unknown ids are simply absent from the result. Raises ``SiblingUnavailable`` when the
    market cannot be reached.
    """

    async def products_by_ids(self, ids: Sequence[int]) -> list[Product]: ...

    async def marketplaces_by_ids(self, ids: Sequence[int]) -> list[MarketPlace]: ...


class BlogService(Protocol):
    """The blog sibling: pages (sellers) and posts."""

    async def posts_by_ids(self, ids: Sequence[int]) -> list[Post]: ...

    async def post_by_slug(self, slug: str) -> Post | None: ...


class CalendarService(Protocol):
    """The events sibling: bookable calendar entries (bookings) and event tickets.

    A booking is a calendar entry in state ``pending`` held for a visitor (user or anonymous
    session); tickets need a logged-in user. States (DESIGN §5): entries pending -> ordered
    (claimed) -> provisional (paid); tickets pending -> reserved (claimed) -> confirmed (paid).
    Pending tickets are not sold: availability counts reserved + confirmed + checked-in.

    Every order-scoped call is idempotent per order. ``page_post_id`` limits a claim to the
    calendars of that page (None: calendars that belong to no page). A claim either takes
    everything it should or nothing, and raises ``SoldOut`` (message naming the entry and
    how many are left; details ``entry_id``, ``ticket_type_id``, ``left``) when a ticket
    type has too few left — re-checked atomically at claim time. Claiming for an order whose
    claims were released earlier takes back exactly what that order had (never lines added
    to the cart since), or raises ``SoldOut``. Raises ``SiblingUnavailable`` when the events
    service cannot be reached.
    """

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]: ...

    async def pending_tickets(self, user_id: int) -> list[Ticket]: ...

    async def remove_pending_entry(self, identity: CartIdentity, entry_id: int) -> bool:
        """Take a pending booking out of the visitor's cart. False when they have none."""
        ...

    async def set_pending_tickets(self, user_id: int, ticket_type_id: int, quantity: int) -> int:
        """Make the user's pending tickets of that type number ``quantity`` (0 removes them);
        returns how many there are now. Raises ``TicketTypeNotFound`` for an unknown type,
        ``SoldOut`` when more are asked for than are left."""
        ...

    async def claim_entries_for_order(
        self,
        order_id: int,
        identity: CartIdentity,
        page_post_id: int | None = None,
        *,
        entry_ids: Collection[int] | None = None,
    ) -> None:
        """Claim the owner's pending bookings of the page's calendars for the order.

        ``entry_ids``: the entries the order was priced with. Only their bookings are
        taken (one booked since stays in the cart, unpaid), and when one of them is no
        longer in the cart nothing is taken and ``CartChanged`` is raised. None takes
        every pending booking of the page."""
        ...

    async def claim_tickets_for_order(
        self,
        order_id: int,
        user_id: int,
        page_post_id: int | None = None,
        *,
        ticket_counts: Mapping[int, int] | None = None,
    ) -> None:
        """Claim the user's pending tickets of the page's calendars for the order.

        ``ticket_counts``: how many of each ticket type the order was priced with. Exactly
        that many are taken (the ones put in the cart first); fewer in the cart takes
        nothing and raises ``CartChanged``. None takes every pending ticket of the page."""
        ...

    async def confirm_entries_for_order(self, order_id: int) -> None: ...

    async def confirm_tickets_for_order(self, order_id: int) -> None: ...

    async def release_for_order(self, order_id: int) -> None:
        """Give the order's claims back to its owner's cart (pending again)."""
        ...

    async def entries_for_order(self, order_id: int) -> list[CalendarEntry]: ...

    async def tickets_for_order(self, order_id: int) -> list[Ticket]: ...

    async def adopt_for_user(self, user_id: int, session_id: str) -> None: ...


# --------------------------------------------------------------------------- payments


@dataclass(frozen=True, slots=True)
class PaymentCredentials:
    """One SumUp merchant account: a page's own, or the site's."""

    merchant_code: str
    api_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What we ask the provider to collect for one payment attempt."""

    reference: str
    amount: Money
    description: str
    return_url: str  # the webhook target
    redirect_url: str  # where the payer's browser goes afterwards
    # The attempt's end (timezone-aware UTC): without it SumUp keeps the checkout payable
    # for ever.
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class HostedCheckout:
    provider_checkout_id: str
    hosted_url: str


@dataclass(frozen=True, slots=True)
class ProviderTransaction:
    id: str
    transaction_code: str | None
    status: str
    amount: Decimal | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class CheckoutState:
    """The provider's current view of one hosted checkout (never the webhook body)."""

    provider_checkout_id: str
    status: str
    reference: str | None
    amount: Decimal | None
    currency: str | None
    transactions: tuple[ProviderTransaction, ...] = ()
    merchant_code: str | None = None


class PaymentProvider(Protocol):
    """A hosted-checkout payment provider (SumUp).

    Errors: ``PaymentProviderUnavailable`` when it cannot be reached, times out or fails
    on its side; ``PaymentProviderRejected`` when it refuses our request (bad key, bad body).
    """

    async def create_checkout(
        self, request: CheckoutRequest, credentials: PaymentCredentials
    ) -> HostedCheckout:
        """Create a hosted checkout.

        A duplicate reference is recovered only when the existing checkout is still PENDING
        and matches reference, amount, currency and merchant; anything else raises
        ``PaymentProviderRejected``.
        """
        ...

    async def get_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState: ...

    async def deactivate_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        """Close a hosted checkout so it can no longer be paid (SumUp: status EXPIRED).

        Raises ``PaymentProviderRejected`` when it cannot be closed, e.g. it is already paid.
        """
        ...

    async def refund(
        self, transaction_id: str, amount: Money | None, credentials: PaymentCredentials
    ) -> None: ...


class Subscriber(Protocol):
    """Where activities go (in split mode the federation service's inbox).

    Delivery is at least once: the same ``id`` may arrive twice, and consumers drop
    duplicates by it. Raises any ``CartError`` when delivery failed and should be retried.
    """

    async def deliver(self, activity: dict[str, Any]) -> None: ...


# --------------------------------------------------------------------------- infrastructure


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Cache(Protocol):
    """A shared cache (Redis in production). Values are strings; misses return None.

    A cache that fails must behave as a miss, never as an error for the visitor.
    """

    async def get(self, key: str) -> str | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """One round trip for many keys; the result lines up with ``keys``."""
        ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    async def set_many(self, items: Mapping[str, str], ttl_seconds: int) -> None:
        """Store every item with the same expiry, in one round trip."""
        ...

    async def delete(self, *keys: str) -> None: ...


class SecretBox(Protocol):
    """Symmetric encryption for secrets stored at rest (per-page SumUp API keys)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str | None:
        """The plaintext, or None when the token cannot be read with any configured key."""
        ...

    def rotate(self, token: str) -> str | None:
        """The same plaintext encrypted with the newest key, or None when it cannot be read."""
        ...


# --------------------------------------------------------------------------- persistence


@dataclass(frozen=True, slots=True)
class StoredCartItem:
    id: int
    product_id: int
    quantity: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewOrderItem:
    product_id: int
    title: str
    quantity: int
    unit_price: Decimal
    cart_item_id: int | None


@dataclass(frozen=True, slots=True)
class StoredOrderItem:
    product_id: int
    title: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    cart_item_id: int | None


@dataclass(frozen=True, slots=True)
class StoredRefund:
    id: int
    order_id: int
    attempt_id: int
    amount: Decimal
    currency: str
    status: str  # requested | done | failed | unconfirmed
    requested_by: str | None
    created_at: datetime
    updated_at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One stored activity or command, with what the relay made of it so far."""

    id: str
    kind: str  # activity | command
    type: str
    object_type: str
    object_id: str
    order_id: int | None
    payload: dict[str, Any]
    published: datetime
    status: str  # pending | done | parked
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredPageConfig:
    page_id: int
    merchant_code: str | None
    api_key_encrypted: str | None = field(repr=False)
    checkout_prefix: str | None
    updated_at: datetime


class CartRepository(Protocol):
    async def live_items(self, identity: CartIdentity) -> list[StoredCartItem]: ...

    async def add_quantity(
        self,
        identity: CartIdentity,
        product_id: int,
        quantity: int,
        maximum: int,
        now: datetime,
        *,
        max_lines: int | None = None,
    ) -> int | None:
        """Insert the line or add to it, atomically, in one statement; None when the total
        would pass maximum. With ``max_lines``, a new line is refused (``TooManyLines``)
        when the owner already has that many; adding to a line never counts them."""
        ...

    async def add_and_list(
        self,
        identity: CartIdentity,
        product_id: int,
        quantity: int,
        maximum: int,
        now: datetime,
        *,
        max_lines: int,
    ) -> tuple[int | None, list[StoredCartItem]]:
        """``add_quantity``, and the owner's live lines as they are after it (in one
        statement where the database can)."""
        ...

    async def set_quantity(
        self, identity: CartIdentity, product_id: int, quantity: int, now: datetime
    ) -> bool:
        """Set a live line's quantity (0 soft-deletes it); False when no such line."""
        ...

    async def move_to_user(
        self, session_id: str, user_id: int, maxima: dict[int, int], now: datetime
    ) -> int:
        """Adopt a session's lines for a user, merging quantities capped per product
        (``maxima``; the hard cap for a product missing from it).

        Returns how many lines were merged into lines the user already had.
        """
        ...

    async def subtract_ordered(
        self, lines: Sequence[tuple[int, int]], order_id: int, now: datetime
    ) -> int:
        """Take a paid order's quantities out of the cart: ``lines`` are (cart item id,
        quantity ordered). Each still-live line loses that quantity; one left with nothing
        is soft-deleted as ordered by ``order_id``. Atomic per line against concurrent
        changes; returns how many lines changed."""
        ...


class ConcurrentChange(Exception):
    """The aggregate was changed by someone else since it was loaded (its version moved)."""


@dataclass(frozen=True, slots=True)
class AdminOrderFilter:
    status: OrderStatus | None = None
    page_slug: str | None = None
    needs_attention: bool = False
    limit: int = 200


class OrderRepository(Protocol):
    async def create(
        self,
        *,
        identity: CartIdentity,
        page_id: int | None,
        page_slug: str | None,
        page_title: str | None,
        currency: str,
        total: Decimal,
        items: Sequence[NewOrderItem],
        webhook_token: str,
        idempotency_key: str | None,
        cart_fingerprint: str | None,
        now: datetime,
        announce: bool = False,
    ) -> Order | None:
        """Store an order in ``claiming`` with its items. None when another order already
        holds this owner's ``idempotency_key`` (a double click): fetch that one instead,
        nothing having been written.

        ``announce``: the order's creation (``domain.events.order_created``) goes into the
        outbox with it. Where the factory ``writes_alone``, all of it is one statement,
        which needs no transaction around it."""
        ...

    async def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        """The aggregate: the order with its attempts and version."""
        ...

    async def save(self, order: Order) -> None:
        """Write the aggregate back: ``UPDATE … WHERE version = :v`` (raises
        ``ConcurrentChange`` when it moved), attempts inserted (id 0) or updated. Bumps
        ``order.version`` and gives new attempts their ids."""
        ...

    async def save_alone(self, order: Order) -> bool:
        """``save`` as one statement, needing no transaction around it, where the database
        and the order allow (else False, and nothing is written)."""
        ...

    async def id_by_idempotency_key(self, identity: CartIdentity, key: str) -> int | None:
        """The owner's order made with this idempotency key, if any (one SELECT)."""
        ...

    async def payable_id_by_fingerprint(
        self, identity: CartIdentity, fingerprint: str
    ) -> int | None:
        """The owner's newest order still awaiting payment (or claims) whose cart had this
        fingerprint, if any (one SELECT)."""
        ...

    async def list_for(self, identity: CartIdentity, limit: int = 100) -> list[Order]:
        """The owner's orders, newest first (without attempts)."""
        ...

    async def items(self, order_id: int) -> list[StoredOrderItem]: ...

    async def claim_due_for_check(self, now: datetime, lease: timedelta, limit: int) -> list[int]:
        """Orders the reconciler should look at now — unpaid ones, and any order with a
        checkout that could still take money — locked with SKIP LOCKED and pushed ``lease``
        into the future, so several workers never ask about the same order at once."""
        ...

    async def schedule_check(self, order_id: int, at: datetime, failures: int) -> None:
        """When the reconciler should look again (backoff after unreadable answers)."""
        ...

    async def check_failures(self, order_id: int) -> int: ...

    async def adopt(self, session_id: str, user_id: int, now: datetime) -> int:
        """Give an anonymous visitor's orders to the user who just logged in; returns how
        many. An adopted order whose idempotency key one of the user's orders already holds
        loses its key (the user's order keeps it), so adoption never breaks the unique key."""
        ...

    async def admin_list(self, query: AdminOrderFilter) -> list[Order]:
        """Every owner's orders, newest first; ``needs_attention``: flagged for a refund or
        a person, or with a parked command."""
        ...

    async def attempt_keys_after(self, attempt_id: int, limit: int) -> list[tuple[int, str]]:
        """(attempt id, encrypted key) of attempts after ``attempt_id``, in id order."""
        ...

    async def replace_attempt_key(self, attempt_id: int, old: str, new: str) -> bool:
        """Replace an attempt's encrypted key, only if it is still ``old``."""
        ...

    async def add_refund(
        self,
        order_id: int,
        attempt_id: int,
        amount: Decimal,
        currency: str,
        requested_by: str | None,
        now: datetime,
    ) -> int: ...

    async def finish_refund(
        self, refund_id: int, status: str, now: datetime, error: str | None = None
    ) -> None: ...

    async def refunds(self, order_id: int) -> list[StoredRefund]: ...


class PageConfigRepository(Protocol):
    async def get(self, page_id: int) -> StoredPageConfig | None: ...

    async def upsert(
        self,
        page_id: int,
        *,
        merchant_code: str | None,
        api_key_encrypted: str | None,
        checkout_prefix: str | None,
        now: datetime,
        only_if_missing: bool = False,
    ) -> StoredPageConfig: ...

    async def with_api_key_after(self, page_id: int, limit: int) -> list[StoredPageConfig]:
        """Up to ``limit`` configs holding an encrypted API key, of pages after ``page_id``,
        in page order: start after 0 and go on after the last one to read them all."""
        ...

    async def replace_api_key(self, page_id: int, old: str, new: str) -> bool:
        """Store the encrypted key ``new`` in place of ``old``. False, and nothing changed,
        when the page's stored key is no longer ``old`` (someone set another meanwhile)."""
        ...


class OutboxRepository(Protocol):
    async def add(self, activity: Activity, order_id: int | None = None) -> str:
        """Store an activity in the current transaction; returns its stable id."""
        ...

    async def add_command(self, command: Command, now: datetime) -> str:
        """Store a command for the relay in the current transaction."""
        ...

    async def count(self, type_: str, object_id: str) -> int: ...

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[OutboxRecord]:
        """Pending records due now, locked with SKIP LOCKED and leased: their next attempt
        is pushed ``lease`` ahead and counted, so a relay that dies mid-batch only delays
        them, and two relays never take the same record at once."""
        ...

    async def finish(self, record_id: str, now: datetime) -> None: ...

    async def retry_later(self, record_id: str, error: str, at: datetime) -> None: ...

    async def park(self, record_id: str, error: str, now: datetime) -> None: ...

    async def unpark(self, record_id: str, now: datetime) -> bool: ...

    async def for_order(self, order_id: int) -> list[OutboxRecord]: ...


class UnitOfWork(Protocol):
    """One database transaction. Committed on a clean exit, rolled back on an exception."""

    @property
    def carts(self) -> CartRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def page_configs(self) -> PageConfigRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


#: True while a use case runs in a task of its own that nothing cancels (see
#: ``services.uninterrupted``): its statements are never stopped half-way, so the units of
#: work need not shield each statement from a cancelled request on their own.
UNINTERRUPTED: ContextVar[bool] = ContextVar("rose_cart_uninterrupted", default=False)


class UnitOfWorkFactory(Protocol):
    #: One statement can write several rows of an aggregate (PostgreSQL's data-modifying
    #: CTEs): ``OrderRepository.create`` and ``save_alone`` may then run with
    #: ``one_statement``.
    writes_alone: bool

    def __call__(self, *, one_statement: bool = False) -> UnitOfWork:
        """A new unit of work. ``one_statement``: its work is one statement, atomic by
        itself, so it needs no transaction around it (no BEGIN/COMMIT round trips); only
        reads, for an error's sake, may follow it."""
        ...
