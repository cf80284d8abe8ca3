"""Turning a cart (or one page's part of it) into an order and sending the payer to pay."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass

from rose_cart.domain.cart import Cart, PageGroup, PageRef
from rose_cart.domain.errors import (
    BadInput,
    CartChanged,
    CartEmpty,
    CartError,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    MixedCurrency,
    MultiplePages,
    PageNotFound,
    ProductUnavailable,
    SiblingUnavailable,
    SoldOut,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import AccountRef, Order, OrderStatus
from rose_cart.ports import (
    CalendarService,
    Clock,
    NewOrderItem,
    UnitOfWorkFactory,
)
from rose_cart.services.cart import CartService
from rose_cart.services.catalog import Catalog
from rose_cart.services.payments import PaymentService, PaymentStart, owner_of
from rose_cart.services.uninterrupted import to_the_end

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,128}\Z")
#: Orders whose key, used again, is compared with the cart.
_UNFINISHED = frozenset({OrderStatus.CLAIMING, OrderStatus.PENDING, OrderStatus.FAILED})


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    order: Order
    payment_url: str


def clean_idempotency_key(raw: object) -> str | None:
    """A client's idempotency key, None when there is none; InvalidIdempotencyKey when it
    is not 8 to 128 of ``A-Z a-z 0-9 _ . : -`` (never quietly ignored)."""
    if raw is None:
        return None
    if isinstance(raw, str) and _KEY.match(raw):
        return raw
    raise InvalidIdempotencyKey()


#: The route segment that names the co-op's own (site-level) group instead of a page.
SITE_GROUP = "site"
#: What that group (items of no page) is called.
SITE_TITLE = "Rose Ash co-op shop"


def checkout_path(page: PageRef | None) -> str:
    """Where a group is checked out: a page's, or the co-op shop's (site-level items)."""
    return f"/cart/{page.slug if page else SITE_GROUP}/checkout/"


def checkout_body(page: PageRef | None) -> dict[str, object]:
    """The body of ``POST /api/v1/checkout`` that checks out exactly this group."""
    return {"page_slug": page.slug} if page else {"site": True}


def page_checkout_links(cart: Cart) -> list[dict[str, object]]:
    return [
        {
            "slug": g.page.slug if g.page else None,
            "title": g.page.title if g.page else SITE_TITLE,
            "checkout_url": checkout_path(g.page),
            "checkout": checkout_body(g.page),
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
        self,
        identity: CartIdentity,
        page_slug: str | None = None,
        idempotency_key: object = None,
        *,
        site: bool = False,
    ) -> CheckoutResult:
        """Check out the whole cart (when it holds one page's lines), one page's lines, or
        (``site``) the co-op shop's own lines, whatever else the cart holds.

        The same idempotency key, or the same unchanged cart while its order is still
        payable, gives the same order. Prices come from the market, never from the client.
        The order is not payable until its bookings and tickets are claimed; a failed claim
        leaves nothing claimed, cancels the order and says why. A checkout once started
        runs to its end even if the visitor goes away meanwhile.
        """
        return await to_the_end(self._checkout(identity, page_slug, idempotency_key, site))

    async def _checkout(
        self, identity: CartIdentity, page_slug: str | None, idempotency_key: object, site: bool
    ) -> CheckoutResult:
        if site and page_slug is not None:
            raise BadInput("Check out either a page or the co-op shop, not both.")
        owner = identity.owner()
        if not owner.is_known:
            raise CartEmpty()
        key = clean_idempotency_key(idempotency_key)
        if key:
            existing = await self._by_key(owner, key)
            if existing is not None:
                await self._same_request(existing, owner, page_slug)
                return await self._continue(existing)

        group = await self._group(owner, page_slug, site)
        print_ = fingerprint(owner, group)
        # One SELECT, which needs no transaction; the order, when there is one, is read whole.
        async with self.uow(one_statement=True) as tx:
            pending_id = await tx.orders.payable_id_by_fingerprint(owner, print_)
        if pending_id is not None:
            # Priced from a cart just like this one: its claims take this group's lines.
            return await self._continue(await self.payments.get(pending_id), group=group)
        # Before anything is stored or claimed: a page whose SumUp key cannot be read
        # stops here, and nobody's money goes to another account. The first attempt is
        # made with this account, read once for the whole checkout.
        page_id = group.page.id if group.page else None
        account = await self.payments.account_for_new_attempt(page_id)

        order = await self._create_order(owner, group, print_, key)
        # A concurrent submission with the same key may have made the order, for another
        # page or from another cart: that order reads its own page's account, and claims
        # as a retry does.
        return await self._continue(
            order,
            account if order.page_id == page_id else None,
            group if order.cart_fingerprint == print_ else None,
        )

    async def _same_request(self, order: Order, owner: CartIdentity, page_slug: str | None) -> None:
        """Refuse a key used before for another checkout: another page, or the same page's
        products changed since (IdempotencyKeyReused).

        The same request is the same page and the same cart contents. Only an order that
        is still payable is compared with the cart: paying takes its lines out of the cart,
        and a retry must then get the order back, not a refusal. Bookings and tickets leave
        the cart when the order claims them, so the products are compared, and a booking or
        ticket of the page in the cart once the claims are made is one added since. Prices
        are not the request's: a price changed meanwhile is the same request.
        """
        if page_slug is not None and page_slug != order.page_slug:
            raise IdempotencyKeyReused()
        if order.status not in _UNFINISHED:
            return
        cart = await self.cart.cart(owner)
        group = next(
            (g for g in cart.groups() if (g.page.slug if g.page else None) == order.page_slug),
            None,
        )
        lines = group.lines if group is not None else ()
        in_cart = {
            line.product_id: line.quantity
            for line in lines
            if line.kind == "product" and line.product_id is not None
        }
        async with self.uow() as tx:
            items = await tx.orders.items(order.id)
        if in_cart != {item.product_id: item.quantity for item in items}:
            raise IdempotencyKeyReused()
        added = [line for line in lines if line.kind != "product"]
        if added and order.status != OrderStatus.CLAIMING:
            raise IdempotencyKeyReused()

    async def _continue(
        self,
        order: Order,
        account: tuple[AccountRef, str] | None = None,
        group: PageGroup | None = None,
    ) -> CheckoutResult:
        """Carry an order on from wherever it stands: claim, then pay (``account``: the
        order's page's account, when this checkout has read it already; ``group``: the
        cart's lines the order was priced with, when at hand, which its claims then take
        exactly)."""
        if order.status == OrderStatus.CLAIMING:
            await self._claim(order, group)
            return self._result(await self.payments.begin(order, account))
        return self._result(await self.payments.resume(order))

    async def _group(
        self, owner: CartIdentity, page_slug: str | None, site: bool = False
    ) -> PageGroup:
        cart = await self.cart.cart(owner, fresh_prices=True)
        if site:
            found = [g for g in cart.groups() if g.page is None]
            if not found:
                raise CartEmpty("Nothing from the Rose Ash co-op shop is in your cart.")
            group = found[0]
        elif page_slug is not None:
            page = await self.catalog.page_by_slug(page_slug)
            if page is None:
                raise PageNotFound()
            of_page = cart.group_for(page_slug)
            if of_page is None:
                raise CartEmpty(f"Nothing from {page.title} is in your cart.")
            group = of_page
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
    ) -> Order:
        """The new order, in ``claiming``; or, when a concurrent submission with the same
        key made it first, that one."""
        total = group.total
        assert total is not None
        items = [
            NewOrderItem(
                line.product_id, line.title, line.quantity, line.unit_price.amount, line.line_id
            )
            for line in group.lines
            if line.kind == "product" and line.product_id is not None
        ]
        # The order, its items and the news of it are stored together: on PostgreSQL in
        # one statement, which needs no transaction around it.
        async with self.uow(one_statement=self.uow.writes_alone) as tx:
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
                now=self.clock.now(),
                announce=True,
            )
        if order is not None:
            return order
        # A double click: the other submission made the order; use that one.
        assert key is not None
        found = await self._by_key(owner, key)
        assert found is not None
        return found

    async def _by_key(self, owner: CartIdentity, key: str) -> Order | None:
        """The owner's order made with this idempotency key, if any."""
        async with self.uow(one_statement=True) as tx:  # one SELECT: no transaction needed
            order_id = await tx.orders.id_by_idempotency_key(owner, key)
        return None if order_id is None else await self.payments.get(order_id)

    async def _claim(self, order: Order, group: PageGroup | None = None) -> None:
        """Claim the order's bookings and tickets (idempotent per order). Any failure gives
        back whatever was claimed and cancels the order; the visitor is told why and their
        cart keeps every line.

        ``group``: the cart's lines the order was priced with, when at hand. The claims
        then take exactly those: a booking or ticket put in the cart (or taken out) in
        another tab since the cart was read is not given away (or charged for). A retry by
        key, whose pricing is not at hand, claims what is there."""
        owner = owner_of(order)
        entry_ids: list[int] | None = None
        ticket_counts: dict[int, int] | None = None
        if group is not None:
            entry_ids = [
                line.entry_id
                for line in group.lines
                if line.kind == "booking" and line.entry_id is not None
            ]
            ticket_counts = {
                line.ticket_type_id: line.quantity
                for line in group.lines
                if line.kind == "ticket" and line.ticket_type_id is not None
            }
        try:
            await self._claim_or_cancel(order, owner, entry_ids, ticket_counts)
        finally:
            # Claimed bookings and tickets leave the cart (released ones come back): what
            # the cart kept of them, and its summary, go once the events service is done.
            # An order priced with none claims none, and the cart is as it was.
            if entry_ids is None or entry_ids or ticket_counts:
                await self.cart.forget_summary(owner)

    async def _claim_or_cancel(
        self,
        order: Order,
        owner: CartIdentity,
        entry_ids: list[int] | None,
        ticket_counts: dict[int, int] | None,
    ) -> None:
        try:
            await self.calendar.claim_entries_for_order(
                order.id, owner, order.page_id, entry_ids=entry_ids
            )
            if order.user_id is not None:
                await self.calendar.claim_tickets_for_order(
                    order.id, order.user_id, order.page_id, ticket_counts=ticket_counts
                )
        except Exception as exc:
            log.warning("order %s: claiming failed (%s); cancelling it", order.id, exc)
            with contextlib.suppress(CartError):  # the cancellation's release command retries
                await self.calendar.release_for_order(order.id)
            # Sold out and a changed cart are named as they are; anything else is a failure.
            reason = exc.code if isinstance(exc, SoldOut | CartChanged) else "claim_failed"
            await self.payments.end(order.id, reason)
            if isinstance(exc, SoldOut):
                # The events service's words name the event and how many are left.
                raise SoldOut(
                    f"{exc.message} Nothing was ordered and your cart is as it was: change "
                    "the number of tickets and check out again.",
                    **exc.details,
                ) from exc
            if isinstance(exc, CartError):
                raise
            raise SiblingUnavailable(
                "We could not reserve your bookings and tickets just now, so nothing was "
                "ordered. Your cart is as it was; please try again in a minute."
            ) from exc

    @staticmethod
    def _result(start: PaymentStart) -> CheckoutResult:
        return CheckoutResult(start.order, start.payment_url)
