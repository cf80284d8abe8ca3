"""What the co-op's admins do with orders: find the ones that need a person, see everything
that happened to one, refund it, and put a parked command back in the queue.

Anyone who is not an admin is told these orders do not exist (404), as for another
visitor's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from rose_cart.domain.errors import (
    InvalidAmount,
    NotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
)
from rose_cart.domain.order import Order, OrderStatus
from rose_cart.ports import AdminOrderFilter, OutboxRecord, UnitOfWorkFactory
from rose_cart.services.orders import OrderService, OrderView, parse_order_id
from rose_cart.services.payments import PaymentService
from rose_cart.services.relay import OutboxRelay


@dataclass(frozen=True, slots=True)
class Admin:
    """Who is asking, as the session knows them."""

    user_id: int | None
    username: str | None

    @property
    def label(self) -> str:
        return self.username or f"user {self.user_id}"


@dataclass(frozen=True, slots=True)
class AdminOrderView:
    view: OrderView
    records: list[OutboxRecord]

    @property
    def parked(self) -> list[OutboxRecord]:
        return [r for r in self.records if r.status == "parked"]


def parse_filter(status: object, page_slug: object, needs_attention: object) -> AdminOrderFilter:
    """Filters from a query string; unknown values are a clear error, not an empty list."""
    parsed_status = None
    if status not in (None, ""):
        try:
            parsed_status = OrderStatus(str(status))
        except ValueError as exc:
            raise NotFound(f"There is no order status called {status!r}.") from exc
    slug = str(page_slug) if page_slug not in (None, "") else None
    flag = str(needs_attention).lower() in {"1", "true", "yes", "on"}
    return AdminOrderFilter(parsed_status, slug, flag)


#: A refund amount has fewer digits before the point than this.
MAX_AMOUNT_DIGITS = 12


def parse_amount(raw: object) -> Decimal | None:
    """A refund amount in major units ("4.50"); None or "" refunds all that is left."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidAmount()
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise InvalidAmount() from exc
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -3:  # type: ignore[operator]
        raise InvalidAmount()
    if amount.adjusted() >= MAX_AMOUNT_DIGITS:
        # "1e400" is finite, but no payment is that large and it cannot be rounded to pennies.
        raise InvalidAmount()
    return amount


class AdminService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        orders: OrderService,
        payments: PaymentService,
        relay: OutboxRelay,
        admins: frozenset[str],
    ) -> None:
        self.uow = uow
        self.orders = orders
        self.payments = payments
        self.relay = relay
        self.admins = frozenset(a.strip().lower() for a in admins if a.strip())

    def is_admin(self, who: Admin) -> bool:
        if who.user_id is None:
            return False
        return str(who.user_id) in self.admins or (
            who.username is not None and who.username.lower() in self.admins
        )

    def require(self, who: Admin) -> None:
        if not self.is_admin(who):
            raise NotFound("There is nothing here.")

    async def list(self, who: Admin, query: AdminOrderFilter) -> list[Order]:
        self.require(who)
        async with self.uow() as tx:
            return await tx.orders.admin_list(query)

    async def view(self, who: Admin, order_id: object) -> AdminOrderView:
        self.require(who)
        oid = parse_order_id(order_id)
        order = await self.payments.get(oid)
        view = await self.orders.details(order)
        async with self.uow() as tx:
            records = await tx.outbox.for_order(oid)
        return AdminOrderView(view, records)

    async def refund(self, who: Admin, order_id: object, amount: object) -> AdminOrderView:
        """Refund all that is left, or ``amount``, through SumUp with the order's own
        account."""
        self.require(who)
        oid = parse_order_id(order_id)
        try:
            await self.payments.refund(oid, parse_amount(amount), who.label)
        except PaymentProviderRejected as exc:
            # The payer-facing text ("your cart is safe") would mislead whoever refunds.
            reason = exc.details.get("provider_message") or "no reason given"
            raise PaymentProviderRejected(
                f"SumUp refused the refund ({reason}). The order page shows what was refunded.",
                **exc.details,
            ) from exc
        except PaymentProviderUnavailable as exc:
            raise PaymentProviderUnavailable(
                "SumUp did not answer, so the refund may or may not have gone through. The "
                "order is flagged: check the payment in SumUp before refunding again.",
                **exc.details,
            ) from exc
        return await self.view(who, oid)

    async def retry(self, who: Admin, order_id: object, record_id: str) -> AdminOrderView:
        """Put a parked command (or activity) of this order back in the relay's queue."""
        view = await self.view(who, order_id)
        if not any(r.id == record_id and r.status == "parked" for r in view.records):
            raise NotFound("That command is not parked.")
        await self.relay.retry_parked(record_id)
        self.payments.on_outbox()
        return await self.view(who, view.view.order.id)
