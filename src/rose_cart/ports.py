"""Ports: the contracts between the cart's use cases and everything outside them.

DTOs are frozen dataclasses with Decimal money. Services depend only on these
Protocols; configuration picks the adapter behind each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Protocol

from rose_cart.domain.events import Activity
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money
from rose_cart.domain.order import AttemptStatus, OrderStatus

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
    """The events sibling: bookable calendar entries and tickets.

    Claims move entries pending -> ordered and tickets pending -> reserved for one order;
    confirm moves them on once paid; release gives them back to the cart.
    ``claim_tickets_for_order`` raises ``SoldOut`` when capacity is gone.
    """

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]: ...

    async def pending_tickets(self, user_id: int) -> list[Ticket]: ...

    async def claim_entries_for_order(
        self, order_id: int, identity: CartIdentity, page_post_id: int | None = None
    ) -> None: ...

    async def claim_tickets_for_order(
        self, order_id: int, user_id: int, page_post_id: int | None = None
    ) -> None: ...

    async def confirm_entries_for_order(self, order_id: int) -> None: ...

    async def confirm_tickets_for_order(self, order_id: int) -> None: ...

    async def release_for_order(self, order_id: int) -> None: ...

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


class PaymentProvider(Protocol):
    """A hosted-checkout payment provider (SumUp).

    Errors: ``PaymentProviderUnavailable`` when it cannot be reached, times out or fails
    on its side; ``PaymentProviderRejected`` when it refuses our request (bad key, bad body).
    """

    async def create_checkout(
        self, request: CheckoutRequest, credentials: PaymentCredentials
    ) -> HostedCheckout:
        """Create a hosted checkout. A duplicate reference is recovered, not an error."""
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

    async def delete(self, *keys: str) -> None: ...


class SecretBox(Protocol):
    """Symmetric encryption for secrets stored at rest (per-page SumUp API keys)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str | None:
        """The plaintext, or None when the token cannot be read with this key."""
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
class StoredAttempt:
    id: int
    order_id: int
    status: AttemptStatus
    amount: Decimal
    currency: str
    reference: str | None
    provider_checkout_id: str | None
    hosted_url: str | None
    transaction_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    status: OrderStatus
    user_id: int | None
    session_id: str | None
    page_id: int | None
    page_slug: str | None
    page_title: str | None
    currency: str
    total: Decimal
    webhook_token: str = field(repr=False)
    idempotency_key: str | None
    cart_fingerprint: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    needs_refund: bool = False

    @property
    def total_money(self) -> Money:
        return Money(self.total, self.currency)


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
        self, identity: CartIdentity, product_id: int, quantity: int, maximum: int, now: datetime
    ) -> int | None:
        """Insert the line or add to it, atomically; None when the total would pass maximum."""
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
    ) -> StoredOrder | None:
        """Store a pending order with its items. None when another order already holds
        this owner's ``idempotency_key`` (a double click): fetch that one instead."""
        ...

    async def get(self, order_id: int, *, for_update: bool = False) -> StoredOrder | None: ...

    async def find_by_idempotency_key(
        self, identity: CartIdentity, key: str
    ) -> StoredOrder | None: ...

    async def find_payable_by_fingerprint(
        self, identity: CartIdentity, fingerprint: str
    ) -> StoredOrder | None: ...

    async def list_for(self, identity: CartIdentity, limit: int = 100) -> list[StoredOrder]: ...

    async def items(self, order_id: int) -> list[StoredOrderItem]: ...

    async def transition(
        self, order_id: int, target: OrderStatus, now: datetime, *, paid: bool = False
    ) -> bool:
        """Guarded move to ``target`` from its legal sources; False when nothing changed."""
        ...

    async def create_attempt(
        self, order_id: int, amount: Decimal, currency: str, now: datetime
    ) -> StoredAttempt: ...

    async def set_attempt_checkout(
        self,
        attempt_id: int,
        reference: str,
        provider_checkout_id: str,
        hosted_url: str,
        now: datetime,
    ) -> None: ...

    async def transition_attempt(
        self,
        attempt_id: int,
        target: AttemptStatus,
        now: datetime,
        transaction_id: str | None = None,
    ) -> bool: ...

    async def attempts(self, order_id: int) -> list[StoredAttempt]: ...

    async def claim_payable_for_reconcile(
        self, older_than: datetime, limit: int
    ) -> list[StoredOrder]:
        """Payable orders not touched since ``older_than``, locked (SKIP LOCKED) for this worker."""
        ...

    async def flag_needs_refund(self, order_id: int, now: datetime) -> None: ...

    async def adopt(self, session_id: str, user_id: int, now: datetime) -> int:
        """Give an anonymous visitor's orders to the user who just logged in; returns how
        many. An adopted order whose idempotency key one of the user's orders already holds
        loses its key (the user's order keeps it), so adoption never breaks the unique key."""
        ...

    async def touch(self, order_id: int, now: datetime) -> None:
        """Record that the reconciler just asked the provider about this order."""
        ...


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


class OutboxRepository(Protocol):
    async def add(self, activity: Activity) -> str:
        """Store an activity in the current transaction; returns its stable id."""
        ...

    async def count(self, type_: str, object_id: str) -> int: ...


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


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
