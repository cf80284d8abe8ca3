"""The visitor's orders: list, show, check again, pay again. Owners only."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from rose_cart.domain.errors import CartError, OrderNotFound, PaymentProviderUnavailable
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.ids import positive_id
from rose_cart.domain.order import Order, PaymentAttempt
from rose_cart.ports import (
    CalendarEntry,
    CalendarService,
    StoredOrderItem,
    StoredRefund,
    Ticket,
    UnitOfWorkFactory,
)
from rose_cart.services.payments import PaymentService, PaymentStart


@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order
    items: list[StoredOrderItem]
    bookings: list[CalendarEntry]
    tickets: list[Ticket]
    refunds: list[StoredRefund]
    #: Set when the provider could not be asked just now; the order is as last known.
    check_error: CartError | None = None
    #: Set when the events service could not list the bookings and tickets just now.
    calendar_error: CartError | None = None

    @property
    def attempts(self) -> list[PaymentAttempt]:
        return sorted(self.order.attempts, key=lambda a: a.number)

    @property
    def refunds_done(self) -> list[StoredRefund]:
        return [r for r in self.refunds if r.status == "done"]


def parse_order_id(raw: object) -> int:
    oid = positive_id(raw)
    if oid is None:
        raise OrderNotFound()
    return oid


def owns(identity: CartIdentity, order: Order) -> bool:
    if identity.user_id is not None:
        return order.user_id == identity.user_id
    return (
        order.user_id is None
        and bool(identity.session_id)
        and order.session_id == identity.session_id
    )


class OrderService:
    def __init__(
        self, uow: UnitOfWorkFactory, payments: PaymentService, calendar: CalendarService
    ) -> None:
        self.uow = uow
        self.payments = payments
        self.calendar = calendar

    async def list_for(self, identity: CartIdentity) -> list[Order]:
        owner = identity.owner()
        if not owner.is_known:
            return []
        async with self.uow() as tx:
            return await tx.orders.list_for(owner)

    async def owned(self, identity: CartIdentity, order_id: object) -> Order:
        """The order, if it is this visitor's; anyone else is told it does not exist."""
        oid = parse_order_id(order_id)
        async with self.uow() as tx:
            order = await tx.orders.get(oid)
        if order is None or not owns(identity.owner(), order):
            raise OrderNotFound()
        return order

    async def view(
        self, identity: CartIdentity, order_id: object, *, check: bool = False
    ) -> OrderView:
        """One order with its items, payments, bookings and tickets. With ``check``, ask
        the payment provider first (the return page and the "check again" button)."""
        order = await self.owned(identity, order_id)
        error: CartError | None = None
        if check:
            try:
                order = await self.payments.check_payment_status(order.id)
            except PaymentProviderUnavailable as exc:
                error = exc
        return await self.details(order, error)

    async def details(self, order: Order, check_error: CartError | None = None) -> OrderView:
        """Everything shown about one order. The events service being down hides the
        bookings and tickets, never the order."""
        async with self.uow() as tx:
            order = await tx.orders.get(order.id) or order
            items = await tx.orders.items(order.id)
            refunds = await tx.orders.refunds(order.id)
        bookings: list[CalendarEntry] = []
        tickets: list[Ticket] = []
        calendar_error: CartError | None = None
        try:
            bookings = await self.calendar.entries_for_order(order.id)
            tickets = await self.calendar.tickets_for_order(order.id)
        except CartError as exc:
            calendar_error = exc
        return OrderView(order, items, bookings, tickets, refunds, check_error, calendar_error)

    async def pay_again(self, identity: CartIdentity, order_id: object) -> PaymentStart:
        order = await self.owned(identity, order_id)
        return await self.payments.pay_again(order.id)

    async def handle_webhook(self, order_id: object, token: str, body: object) -> bool:
        """SumUp's notification: only a trigger to ask SumUp, never a fact in itself.

        Returns False (and changes nothing) for an unknown order, a wrong token, an event
        type we do not handle, or a checkout id that is not one of the order's.
        """
        try:
            oid = parse_order_id(order_id)
        except OrderNotFound:
            return False
        async with self.uow() as tx:
            order = await tx.orders.get(oid)
        # As bytes: compare_digest refuses str with anything but ASCII in it, and a 500 for
        # a known order would tell that it exists.
        if order is None or not hmac.compare_digest(
            order.webhook_token.encode(), token.encode("utf-8", "surrogatepass")
        ):
            return False
        checkout_id: str | None = None
        if isinstance(body, dict):
            event = body.get("event_type")
            if event is not None and event != "CHECKOUT_STATUS_CHANGED":
                return True
            raw = body.get("id")
            ours = {a.provider_checkout_id for a in order.attempts if a.provider_checkout_id}
            if raw is not None and raw not in ours:
                return True
            checkout_id = raw if isinstance(raw, str) else None
        await self.payments.check_payment_status(oid, checkout_id)
        return True
