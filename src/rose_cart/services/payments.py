"""Taking and confirming payments.

``check_payment_status`` is the one confirmation path: the webhook, the return page, the
visitor's "check again" button and the reconciler all call it. It never trusts what a
webhook said; it asks the provider, and applies what it hears through guarded transitions
under a row lock, so however many callers arrive at once the order is paid exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from rose_cart.domain.errors import CartError, OrderNotFound, OrderNotPayable
from rose_cart.domain.events import order_expired, order_paid
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money, quantize
from rose_cart.domain.order import (
    PAYABLE,
    AttemptStatus,
    OrderStatus,
    attempt_status_from_provider,
    checkout_reference,
    is_stale,
)
from rose_cart.ports import (
    CalendarService,
    CheckoutRequest,
    CheckoutState,
    Clock,
    PaymentProvider,
    StoredAttempt,
    StoredOrder,
    UnitOfWorkFactory,
)
from rose_cart.services.cart import CartService
from rose_cart.services.page_config import PageConfigService

log = logging.getLogger(__name__)

_OPEN = frozenset({AttemptStatus.CREATED, AttemptStatus.PENDING, AttemptStatus.FAILED})


@dataclass(frozen=True, slots=True)
class PaymentStart:
    order: StoredOrder
    payment_url: str


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int = 0
    paid: int = 0
    expired: int = 0
    errors: int = 0


class PaymentService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        provider: PaymentProvider,
        accounts: PageConfigService,
        calendar: CalendarService,
        cart: CartService,
        clock: Clock,
        base_url: str,
    ) -> None:
        self.uow = uow
        self.provider = provider
        self.accounts = accounts
        self.calendar = calendar
        self.cart = cart
        self.clock = clock
        self.base_url = base_url.rstrip("/")

    # ----------------------------------------------------------------- starting

    def return_url(self, order: StoredOrder) -> str:
        return f"{self.base_url}/checkout/return/{order.id}/"

    def webhook_url(self, order: StoredOrder) -> str:
        return f"{self.base_url}/checkout/webhook/{order.id}/{order.webhook_token}/"

    async def resume(self, order: StoredOrder) -> PaymentStart:
        """Send the payer to the order's live hosted checkout, making one if needed.

        A paid order goes to its return page. An attempt still being created (a double
        click racing the first) is created again with the same reference, which the
        provider answers with the same checkout, so there is still one checkout.
        """
        if order.status == OrderStatus.PAID:
            return PaymentStart(order, self.return_url(order))
        if order.status not in PAYABLE:
            raise OrderNotPayable(
                "This order has expired or was cancelled. Please check out again from your cart."
            )
        async with self.uow() as tx:
            attempts = await tx.orders.attempts(order.id)
        latest = attempts[-1] if attempts else None
        now = self.clock.now()
        if latest is not None and not is_stale(latest.created_at, now):
            if latest.status == AttemptStatus.PENDING and latest.hosted_url:
                return PaymentStart(order, latest.hosted_url)
            if latest.status == AttemptStatus.CREATED:
                return await self.start_attempt(order, latest)
        return await self.pay_again(order)

    async def pay_again(self, order: StoredOrder) -> PaymentStart:
        """A new attempt (a new hosted checkout) for a payable order.

        First asks the provider about the earlier attempts, so a payment made a moment ago
        is found rather than charged twice, and closes the earlier checkouts.
        """
        order = await self.check_payment_status(order.id)
        if order.status == OrderStatus.PAID:
            return PaymentStart(order, self.return_url(order))
        if order.status not in PAYABLE:
            raise OrderNotPayable()
        await self._close_open_checkouts(order)
        now = self.clock.now()
        async with self.uow() as tx:
            attempt = await tx.orders.create_attempt(order.id, order.total, order.currency, now)
            await tx.orders.transition(order.id, OrderStatus.PENDING, now)
        return await self.start_attempt(order, attempt)

    async def start_attempt(self, order: StoredOrder, attempt: StoredAttempt) -> PaymentStart:
        """Create the provider's hosted checkout for one attempt.

        On failure the attempt is marked failed and the error propagates; the order stays
        payable and the cart is untouched.
        """
        account = await self.accounts.account_for(order.page_id)
        reference = attempt.reference or checkout_reference(
            account.checkout_prefix, order.id, attempt.id
        )
        title = order.page_title or "Rose Ash co-op"
        request = CheckoutRequest(
            reference=reference,
            amount=Money(attempt.amount, attempt.currency),
            description=f"{title} order #{order.id}",
            return_url=self.webhook_url(order),
            redirect_url=self.return_url(order),
        )
        try:
            hosted = await self.provider.create_checkout(request, account.credentials)
        except CartError:
            async with self.uow() as tx:
                await tx.orders.transition_attempt(
                    attempt.id, AttemptStatus.FAILED, self.clock.now()
                )
            raise
        async with self.uow() as tx:
            await tx.orders.set_attempt_checkout(
                attempt.id,
                reference,
                hosted.provider_checkout_id,
                hosted.hosted_url,
                self.clock.now(),
            )
            stored = [a for a in await tx.orders.attempts(order.id) if a.id == attempt.id]
        url = stored[0].hosted_url if stored and stored[0].hosted_url else hosted.hosted_url
        return PaymentStart(order, url)

    async def _close_open_checkouts(self, order: StoredOrder) -> None:
        async with self.uow() as tx:
            attempts = await tx.orders.attempts(order.id)
        account = await self.accounts.account_for(order.page_id)
        for attempt in attempts:
            if attempt.provider_checkout_id and attempt.status in _OPEN:
                try:
                    await self.provider.deactivate_checkout(
                        attempt.provider_checkout_id, account.credentials
                    )
                except CartError as exc:
                    log.info("could not close checkout of order %s: %s", order.id, exc.code)
                    continue
                async with self.uow() as tx:
                    await tx.orders.transition_attempt(
                        attempt.id, AttemptStatus.EXPIRED, self.clock.now()
                    )

    # ----------------------------------------------------------------- confirming

    async def check_payment_status(self, order_id: int) -> StoredOrder:
        """Ask the provider about the order's open checkouts and apply what it says.

        PAID -> the order is paid (once). FAILED -> the order is marked failed but stays
        payable. EXPIRED, or no payment once the hosted session plus grace is over -> the
        order expires and its claims go back to the cart. Raises
        ``PaymentProviderUnavailable`` when the provider cannot be asked; nothing changes then.
        """
        order = await self._get(order_id)
        if order.status not in PAYABLE:
            return order
        async with self.uow() as tx:
            attempts = await tx.orders.attempts(order.id)
        open_attempts = [a for a in attempts if a.provider_checkout_id and a.status in _OPEN]
        if open_attempts:
            account = await self.accounts.account_for(order.page_id)
            latest_id = attempts[-1].id
            for attempt in reversed(open_attempts):
                assert attempt.provider_checkout_id is not None
                state = await self.provider.get_checkout(
                    attempt.provider_checkout_id, account.credentials
                )
                if not _belongs(state, attempt):
                    log.warning(
                        "checkout %s does not match order %s; ignored",
                        attempt.provider_checkout_id,
                        order.id,
                    )
                    continue
                status = attempt_status_from_provider(state.status)
                if status == AttemptStatus.PAID:
                    await self._mark_paid(order, attempt, state)
                    return await self._get(order_id)
                if status in {AttemptStatus.FAILED, AttemptStatus.EXPIRED}:
                    await self._attempt_ended(order, attempt, status, attempt.id == latest_id)
        return await self._expire_if_stale(await self._get(order_id))

    async def _mark_paid(
        self, order: StoredOrder, attempt: StoredAttempt, state: CheckoutState
    ) -> bool:
        now = self.clock.now()
        transaction = next(
            (t for t in state.transactions if t.status == "SUCCESSFUL"),
            state.transactions[0] if state.transactions else None,
        )
        async with self.uow() as tx:
            locked = await tx.orders.get(order.id, for_update=True)
            if locked is None or locked.status not in PAYABLE:
                # Paid twice through two hosted checkouts: a person must refund one.
                if (
                    locked is not None
                    and locked.status == OrderStatus.PAID
                    and await tx.orders.transition_attempt(
                        attempt.id,
                        AttemptStatus.PAID,
                        now,
                        transaction.id if transaction else None,
                    )
                ):
                    await tx.orders.flag_needs_refund(order.id, now)
                return False
            if not await tx.orders.transition(order.id, OrderStatus.PAID, now, paid=True):
                return False
            await tx.orders.transition_attempt(
                attempt.id, AttemptStatus.PAID, now, transaction.id if transaction else None
            )
            items = await tx.orders.items(order.id)
            await tx.carts.subtract_ordered(
                [(i.cart_item_id, i.quantity) for i in items if i.cart_item_id is not None],
                order.id,
                now,
            )
            await tx.outbox.add(
                order_paid(order.id, order.total_money.as_str(), order.currency, now)
            )
            # Inside the transaction: if the events service cannot confirm, nothing is
            # recorded and the reconciler tries again.
            await self.calendar.confirm_entries_for_order(order.id)
            await self.calendar.confirm_tickets_for_order(order.id)
        await self.cart.forget_summary(_owner(order))
        log.info("order %s paid", order.id)
        return True

    async def _attempt_ended(
        self, order: StoredOrder, attempt: StoredAttempt, status: AttemptStatus, is_latest: bool
    ) -> None:
        now = self.clock.now()
        async with self.uow() as tx:
            if status == AttemptStatus.FAILED:
                changed = await tx.orders.transition_attempt(attempt.id, status, now)
                if is_latest and (changed or attempt.status == AttemptStatus.FAILED):
                    await tx.orders.transition(order.id, OrderStatus.FAILED, now)
            else:
                await tx.orders.transition_attempt(attempt.id, status, now)

    async def _expire_if_stale(self, order: StoredOrder) -> StoredOrder:
        if order.status not in PAYABLE:
            return order
        async with self.uow() as tx:
            attempts = await tx.orders.attempts(order.id)
        latest = attempts[-1] if attempts else None
        now = self.clock.now()
        provider_expired = latest is not None and latest.status == AttemptStatus.EXPIRED
        started = latest.created_at if latest else order.created_at
        if not provider_expired and not is_stale(started, now):
            return order
        async with self.uow() as tx:
            locked = await tx.orders.get(order.id, for_update=True)
            if locked is None or not await tx.orders.transition(order.id, OrderStatus.EXPIRED, now):
                return locked or order
            for attempt in attempts:
                if attempt.status in _OPEN:
                    await tx.orders.transition_attempt(attempt.id, AttemptStatus.EXPIRED, now)
            await tx.outbox.add(order_expired(order.id, now))
            await self.calendar.release_for_order(order.id)
        log.info("order %s expired", order.id)
        return await self._get(order.id)

    async def _get(self, order_id: int) -> StoredOrder:
        async with self.uow() as tx:
            order = await tx.orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        return order

    # ----------------------------------------------------------------- reconciling

    async def reconcile(
        self, *, every: timedelta = timedelta(seconds=20), batch: int = 50
    ) -> ReconcileReport:
        """One pass over payable orders not checked for ``every``.

        Several workers may run this at once: each claims its own orders with
        ``FOR UPDATE SKIP LOCKED`` and stamps them, so no order is asked about twice.
        """
        now = self.clock.now()
        async with self.uow() as tx:
            due = await tx.orders.claim_payable_for_reconcile(now - every, batch)
            for order in due:
                await tx.orders.touch(order.id, now)
        paid = expired = errors = 0
        for order in due:
            try:
                after = await self.check_payment_status(order.id)
            except CartError as exc:
                errors += 1
                log.warning("reconcile: order %s: %s", order.id, exc.code)
                continue
            paid += after.status == OrderStatus.PAID
            expired += after.status == OrderStatus.EXPIRED
        return ReconcileReport(len(due), paid, expired, errors)


def _belongs(state: CheckoutState, attempt: StoredAttempt) -> bool:
    """The provider's checkout is the one we made for this attempt, for this amount."""
    if state.reference and attempt.reference and state.reference != attempt.reference:
        return False
    if state.currency and state.currency.upper() != attempt.currency:
        return False
    return state.amount is None or quantize(state.amount, attempt.currency) == attempt.amount


def _owner(order: StoredOrder) -> CartIdentity:
    if order.user_id is not None:
        return CartIdentity(user_id=order.user_id)
    return CartIdentity(session_id=order.session_id)
