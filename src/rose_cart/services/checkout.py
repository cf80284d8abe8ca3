"""Turning a cart (or one page's part of it) into an order and sending the payer to pay."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass

from rose_cart.domain.cart import Cart, PageGroup, PageRef
from rose_cart.domain.errors import (
    CartEmpty,
    MixedCurrency,
    MultiplePages,
    PageNotFound,
    ProductUnavailable,
    SoldOut,
)
from rose_cart.domain.events import order_cancelled, order_created
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import OrderStatus
from rose_cart.ports import (
    CalendarService,
    Clock,
    NewOrderItem,
    StoredAttempt,
    StoredOrder,
    UnitOfWorkFactory,
)
from rose_cart.services.cart import CartService
from rose_cart.services.catalog import Catalog
from rose_cart.services.payments import PaymentService, PaymentStart

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    order: StoredOrder
    payment_url: str


def clean_idempotency_key(raw: object) -> str | None:
    """A client's idempotency key, or None when absent or not of a usable shape."""
    if isinstance(raw, str) and _KEY.match(raw.strip()):
        return raw.strip()
    return None


def checkout_path(page: PageRef | None) -> str:
    """Where a page's group is checked out; site-level items use the whole-cart checkout."""
    return f"/cart/{page.slug}/checkout/" if page else "/cart/checkout/"


def page_checkout_links(cart: Cart) -> list[dict[str, object]]:
    return [
        {
            "slug": g.page.slug if g.page else None,
            "title": g.page.title if g.page else "Rose Ash co-op shop",
            "checkout_url": checkout_path(g.page),
            "cart_url": f"/cart/{g.page.slug}/" if g.page else "/cart/",
        }
        for g in cart.groups()
    ]


def fingerprint(owner: CartIdentity, group: PageGroup) -> str:
    """What the cart held at checkout: the same cart checked out again reuses its order."""
    body = json.dumps(
        {
            "owner": owner.key,
            "page": group.page.id if group.page else None,
            "lines": sorted(
                [
                    line.kind,
                    line.product_id,
                    line.entry_id,
                    line.ticket_type_id,
                    line.quantity,
                    line.unit_price.as_str(),
                    line.currency,
                ]
                for line in group.lines
            ),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class CheckoutService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cart: CartService,
        catalog: Catalog,
        calendar: CalendarService,
        payments: PaymentService,
        clock: Clock,
    ) -> None:
        self.uow = uow
        self.cart = cart
        self.catalog = catalog
        self.calendar = calendar
        self.payments = payments
        self.clock = clock

    async def checkout(
        self, identity: CartIdentity, page_slug: str | None = None, idempotency_key: object = None
    ) -> CheckoutResult:
        """Check out the whole cart (when it holds one page's lines) or one page's lines.

        The same idempotency key, or the same unchanged cart while its order is still
        payable, gives the same order. Prices come from the market, never from the client.
        """
        owner = identity.owner()
        if not owner.is_known:
            raise CartEmpty()
        key = clean_idempotency_key(idempotency_key)
        if key:
            async with self.uow() as tx:
                existing = await tx.orders.find_by_idempotency_key(owner, key)
            if existing is not None:
                return self._result(await self.payments.resume(existing))

        group = await self._group(owner, page_slug)
        print_ = fingerprint(owner, group)
        async with self.uow() as tx:
            pending = await tx.orders.find_payable_by_fingerprint(owner, print_)
        if pending is not None:
            return self._result(await self.payments.resume(pending))

        order, attempt = await self._create_order(owner, group, print_, key)
        if attempt is None:
            return self._result(await self.payments.resume(order))
        await self._claim(order, owner, group)
        return self._result(await self.payments.start_attempt(order, attempt))

    async def _group(self, owner: CartIdentity, page_slug: str | None) -> PageGroup:
        cart = await self.cart.cart(owner, fresh_prices=True)
        if page_slug is not None:
            page = await self.catalog.page_by_slug(page_slug)
            if page is None:
                raise PageNotFound()
            group = cart.group_for(page_slug)
            if group is None:
                raise CartEmpty(f"Nothing from {page.title} is in your cart.")
        else:
            groups = cart.groups()
            if not groups:
                raise CartEmpty()
            if len(groups) > 1:
                raise MultiplePages(pages=page_checkout_links(cart))
            group = groups[0]
        unavailable = [line.title for line in group.lines if not line.available]
        if unavailable:
            raise ProductUnavailable(
                f"{', '.join(unavailable)} cannot be ordered at the moment. "
                "Remove it from your cart to check out the rest."
            )
        if len(group.totals) > 1:
            raise MixedCurrency()
        return group

    async def _create_order(
        self, owner: CartIdentity, group: PageGroup, print_: str, key: str | None
    ) -> tuple[StoredOrder, StoredAttempt | None]:
        """The new order and its first attempt; or, when a concurrent submission with the
        same key made the order, that order and None."""
        total = group.total
        assert total is not None
        items = [
            NewOrderItem(
                line.product_id, line.title, line.quantity, line.unit_price.amount, line.line_id
            )
            for line in group.lines
            if line.kind == "product" and line.product_id is not None
        ]
        now = self.clock.now()
        async with self.uow() as tx:
            order = await tx.orders.create(
                identity=owner,
                page_id=group.page.id if group.page else None,
                page_slug=group.page.slug if group.page else None,
                page_title=group.page.title if group.page else None,
                currency=total.currency,
                total=total.amount,
                items=items,
                webhook_token=secrets.token_urlsafe(24),
                idempotency_key=key,
                cart_fingerprint=print_,
                now=now,
            )
            if order is not None:
                attempt = await tx.orders.create_attempt(order.id, order.total, order.currency, now)
                await tx.outbox.add(order_created(order.id, total.as_str(), total.currency, now))
                return order, attempt
        if order is None:
            # A double click: the other submission made the order; use that one.
            assert key is not None
            async with self.uow() as tx:
                order = await tx.orders.find_by_idempotency_key(owner, key)
            assert order is not None
        return order, None

    async def _claim(self, order: StoredOrder, owner: CartIdentity, group: PageGroup) -> None:
        """Claim the group's bookings and tickets for the order (a saga: a failed claim
        cancels the order and gives everything back)."""
        kinds = {line.kind for line in group.lines}
        page_id = group.page.id if group.page else None
        try:
            if "booking" in kinds:
                await self.calendar.claim_entries_for_order(order.id, owner, page_id)
            if "ticket" in kinds and owner.user_id is not None:
                await self.calendar.claim_tickets_for_order(order.id, owner.user_id, page_id)
        except SoldOut:
            await self._cancel(order, "sold_out")
            raise

    async def _cancel(self, order: StoredOrder, reason: str) -> None:
        now = self.clock.now()
        async with self.uow() as tx:
            if await tx.orders.transition(order.id, OrderStatus.CANCELLED, now):
                await tx.outbox.add(order_cancelled(order.id, reason, now))
        await self.calendar.release_for_order(order.id)

    @staticmethod
    def _result(start: PaymentStart) -> CheckoutResult:
        return CheckoutResult(start.order, start.payment_url)
