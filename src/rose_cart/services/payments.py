"""Taking, confirming, closing and refunding payments.

The pattern everywhere: ask the provider (or a sibling) **outside** any transaction, then
apply the answer to the Order aggregate in **one short transaction** that saves it with
its version and writes the resulting activities and commands to the outbox. The relay
carries the commands out afterwards (``run_command``).

``check_payment_status`` is the one confirmation path: the webhook, the return page, the
visitor's "check again" button and the reconciler all call it. It never trusts what a
webhook said; it asks the provider with the account each checkout was made with.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from rose_cart.domain.errors import (
    CartError,
    NotRefundable,
    OrderNotFound,
    OrderNotPayable,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    SoldOut,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money, quantize
from rose_cart.domain.order import (
    DEFAULT_VALID_FOR,
    ENDED,
    SETTLED,
    AccountRef,
    AttemptStatus,
    AttemptStillOpen,
    CheckoutAnswer,
    CommandType,
    Effects,
    Order,
    OrderStatus,
    PaymentAttempt,
    attempt_status_from_provider,
)
from rose_cart.ports import (
    CalendarService,
    CheckoutRequest,
    CheckoutState,
    Clock,
    ConcurrentChange,
    OutboxRecord,
    PaymentCredentials,
    PaymentProvider,
    StoredRefund,
    UnitOfWork,
    UnitOfWorkFactory,
)
from rose_cart.services.cart import CartService
from rose_cart.services.page_config import PageConfigService

log = logging.getLogger(__name__)

#: The longest the reconciler waits between two looks at an unreadable checkout.
MAX_BACKOFF = timedelta(hours=6)
#: How long an order claimed by one reconciler is left to it (a worker that dies while
#: checking only delays the order's next look by this much).
CHECK_LEASE = timedelta(minutes=2)
#: An attempt whose checkout was never made is made again (same reference) only while it has
#: at least this long left to run; older ones are given up for a fresh attempt.
UNSENT_REUSE_MARGIN = timedelta(minutes=2)

_Rule = Callable[[Order], Effects | None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PaymentStart:
    order: Order
    payment_url: str


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int = 0
    paid: int = 0
    expired: int = 0
    errors: int = 0


async def write_effects(tx: UnitOfWork, effects: Effects | None, now: datetime) -> None:
    """Activities and commands go to the outbox in the transaction that caused them."""
    if not effects:
        return
    for activity in effects.activities:
        await tx.outbox.add(activity, order_id=int(activity.object_id))
    for command in effects.commands:
        await tx.outbox.add_command(command, now)


def owner_of(order: Order) -> CartIdentity:
    if order.user_id is not None:
        return CartIdentity(user_id=order.user_id)
    return CartIdentity(session_id=order.session_id)


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
        *,
        valid_for: timedelta = DEFAULT_VALID_FOR,
        nonce: Callable[[], str] = lambda: secrets.token_hex(5),
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.uow = uow
        self.provider = provider
        self.accounts = accounts
        self.calendar = calendar
        self.cart = cart
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.valid_for = valid_for
        self.nonce = nonce
        self.on_outbox = on_outbox or (lambda: None)

    # ----------------------------------------------------------------- plumbing

    def return_url(self, order: Order) -> str:
        return f"{self.base_url}/checkout/return/{order.id}/"

    def webhook_url(self, order: Order) -> str:
        return f"{self.base_url}/checkout/webhook/{order.id}/{order.webhook_token}/"

    async def get(self, order_id: int) -> Order:
        async with self.uow() as tx:
            order = await tx.orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        return order

    async def transact(self, order_id: int, rule: _Rule, *, held: Order | None = None) -> Order:
        """Load the aggregate under a row lock, apply one rule, save it with its version and
        its effects. A paid transition also takes the ordered quantities out of the cart.

        ``held``: the order as this request last read or saved it. The rule is applied to
        a copy of it first, and the save's version guard keeps the result only if nobody
        has changed the order since; otherwise (and when the rule refuses the copy) the
        order is read again under the lock. One request moving its own order along, as a
        checkout does, so reads it once instead of at every step; and where the step has
        nothing else to record, its save is one statement without a transaction
        (``save_alone``, on PostgreSQL), under the same version guard."""
        copy = held.copy() if held is not None else None
        # Asked of the database, not learnt from an order: one order that cannot be saved so
        # (one of two attempts, say) says nothing of the next.
        if held is not None and self.uow.writes_alone:
            alone, moved = await self._saved_alone(held.copy(), rule)
            if alone is not None:
                return alone
            if moved:
                copy = None  # read it again
        for _ in range(5):
            now = self.clock.now()
            try:
                async with self.uow() as tx:
                    optimistic = copy is not None
                    order = (
                        copy if copy is not None else await tx.orders.get(order_id, for_update=True)
                    )
                    copy = None
                    if order is None:
                        raise OrderNotFound()
                    was = order.status
                    try:
                        effects = rule(order)
                    except Exception:
                        if not optimistic:
                            raise
                        # Refused on what may be an out-of-date copy: ask the database.
                        raise ConcurrentChange(order_id) from None
                    became_paid = order.status == OrderStatus.PAID and was != OrderStatus.PAID
                    if became_paid:
                        items = await tx.orders.items(order.id)
                        await tx.carts.subtract_ordered(
                            [(i.cart_item_id, i.quantity) for i in items if i.cart_item_id],
                            order.id,
                            now,
                        )
                    await tx.orders.save(order)
                    await write_effects(tx, effects, now)
            except ConcurrentChange:
                continue
            if became_paid:
                log.info("order %s paid", order.id)
                await self.cart.forget_summary(owner_of(order))
            if effects:
                self.on_outbox()
            return order
        raise ConcurrentChange(order_id)

    async def _saved_alone(self, order: Order, rule: _Rule) -> tuple[Order | None, bool]:
        """``rule`` applied to ``order`` (a copy of what the caller holds) and saved in one
        statement, when that is all it takes: no effects to record, nothing paid. Returns
        the saved order, or None and whether the order has moved (or the rule refused the
        copy): ``transact`` then goes on as without it, reading the order again if so."""
        was = order.status
        try:
            effects = rule(order)
        except Exception:
            return None, True  # refused on what may be an out-of-date copy
        if effects or (order.status == OrderStatus.PAID and was != OrderStatus.PAID):
            return None, False
        try:
            async with self.uow(one_statement=True) as tx:
                saved = await tx.orders.save_alone(order)
        except ConcurrentChange:
            return None, True
        return (order if saved else None), False

    async def _ask(
        self,
        order: Order,
        attempt: PaymentAttempt,
        call: Callable[[str, PaymentCredentials], Awaitable[T]],
        checkout_id: str | None = None,
    ) -> T:
        """Call the provider about one attempt's checkout with the account it was made with.

        A key the seller has since replaced for the same SumUp account is tried next, so a
        changed key does not strand the orders made with the old one.
        """
        target = checkout_id or attempt.provider_checkout_id
        assert target is not None
        candidates = await self.accounts.credentials_for(attempt.account_ref, order.page_id)
        for n, credentials in enumerate(candidates):
            try:
                return await call(target, credentials)
            except PaymentProviderRejected as exc:
                if n + 1 < len(candidates) and exc.details.get("provider_status") in {401, 403}:
                    continue
                raise
        raise PaymentProviderUnavailable()  # no candidates: credentials_for raised already

    # ----------------------------------------------------------------- starting

    async def account_for_new_attempt(self, page_id: int | None) -> tuple[AccountRef, str]:
        """The account a new checkout for the page would be made with (and its prefix).

        Raises ``PaymentProviderUnavailable`` when the page's key cannot be read: never
        another account."""
        return await self.accounts.attempt_account(page_id)

    async def begin(
        self, order: Order, account: tuple[AccountRef, str] | None = None
    ) -> PaymentStart:
        """Claims are held: the order becomes payable and the payer is sent to its first
        hosted checkout.

        ``order`` is the order as this checkout read or made it; should it have changed
        since (its claims came back after it was given up, say), it is read again under the
        row lock and the rule applies to that. ``account``: what ``account_for_new_attempt``
        answered for the order's page earlier in the same checkout; read now when not given.
        """
        order_id = order.id
        if account is None:
            account = await self.account_for_new_attempt(order.page_id)
        account_ref, prefix = account
        nonce = self.nonce()

        def rule(o: Order) -> None:
            o.claims_held(self.clock.now())
            if o.is_payable and not o.attempts:
                o.start_attempt(
                    now=self.clock.now(),
                    valid_for=self.valid_for,
                    account=account_ref,
                    prefix=prefix,
                    nonce=nonce,
                )

        return await self.resume(await self.transact(order_id, rule, held=order))

    async def resume(self, order: Order) -> PaymentStart:
        """Send the payer to the order's live hosted checkout, making one if needed.

        An attempt whose checkout is not made yet (a double click racing the first, or
        SumUp failing a moment ago) is created with the same reference, which the provider
        answers with the same checkout, so there is still one checkout.
        """
        if order.status in SETTLED:
            return PaymentStart(order, self.return_url(order))
        if not order.is_payable:
            raise OrderNotPayable(
                "This order has expired or was cancelled. Please check out again from your cart."
            )
        live = order.live_attempt()
        if live is not None and live.valid_until > self.clock.now():
            if live.provider_checkout_id is None:
                return await self._create_checkout(order, live)
            if live.hosted_url:
                return PaymentStart(order, live.hosted_url)
        return await self.pay_again(order.id)

    async def pay_again(self, order_id: int) -> PaymentStart:
        """A new attempt (a new hosted checkout) for a payable order.

        Asks the provider first, so a payment made a moment ago is found rather than
        charged twice; closes the open checkout; only then makes a new one. When the old
        checkout cannot be closed the payer is told to try again: never two live checkouts.
        """
        order = await self.check_payment_status(order_id)
        if order.status in SETTLED:
            return PaymentStart(order, self.return_url(order))
        if not order.is_payable:
            raise OrderNotPayable()
        live = order.live_attempt()
        if (
            live is not None
            and live.provider_checkout_id is None
            and live.valid_until > self.clock.now() + UNSENT_REUSE_MARGIN
        ):
            # Its checkout is being made (another tab) or failed a moment ago: make it with
            # the same reference, which gives the same checkout, rather than a second one.
            return await self._create_checkout(order, live)
        order, outcomes = await self._close_open_checkouts(order)
        if order.status in SETTLED:
            return PaymentStart(order, self.return_url(order))
        if "unreadable" in outcomes.values():
            raise PaymentProviderUnavailable(
                "We could not close your earlier payment link, so we have not made a new "
                "one. Nothing was taken twice; please try again in a minute."
            )
        closed = list(outcomes)
        account, prefix = await self.account_for_new_attempt(order.page_id)
        nonce = self.nonce()

        def rule(o: Order) -> None:
            now = self.clock.now()
            for attempt_id in closed:
                o.checkout_closed(attempt_id, now)
            o.abandon_unsent_attempts(now, ending_before=now + UNSENT_REUSE_MARGIN)
            o.start_attempt(
                now=now, valid_for=self.valid_for, account=account, prefix=prefix, nonce=nonce
            )

        try:
            order = await self.transact(order.id, rule)
        except AttemptStillOpen:
            # Another tab made the new attempt a moment ago: send this payer there too (its
            # checkout is made with the same reference, so there is still one).
            return await self.resume(await self.get(order.id))
        latest = order.latest_attempt
        assert latest is not None
        return await self._create_checkout(order, latest)

    async def _create_checkout(self, order: Order, attempt: PaymentAttempt) -> PaymentStart:
        """Make the attempt's hosted checkout. On failure the attempt stays unsent (the same
        form submitted again retries it with the same reference) and the error propagates;
        the cart is untouched."""
        credentials = await self.accounts.first_credentials(attempt.account_ref, order.page_id)
        title = order.page_title or "Rose Ash co-op"
        request = CheckoutRequest(
            reference=attempt.reference,
            amount=Money(attempt.amount, attempt.currency),
            description=f"{title} order #{order.id}",
            return_url=self.webhook_url(order),
            redirect_url=self.return_url(order),
            valid_until=attempt.valid_until,
        )
        hosted = await self.provider.create_checkout(request, credentials)
        checkout_id, url = hosted.provider_checkout_id, hosted.hosted_url
        order = await self.transact(
            order.id,
            lambda o: o.checkout_created(attempt.id, checkout_id, url, self.clock.now()),
            held=order,
        )
        stored = order.attempt(attempt.id)
        if stored.is_open and stored.provider_checkout_id == checkout_id and stored.hosted_url:
            return PaymentStart(order, stored.hosted_url)
        # The attempt was closed meanwhile: close this checkout now (the relay's command
        # does it again should this fail), and show the payer what is live.
        with contextlib.suppress(CartError):
            await self._close(order, stored, checkout_id)
        live = order.live_attempt()
        if live is not None and live.hosted_url:
            return PaymentStart(order, live.hosted_url)
        return PaymentStart(order, self.return_url(order))

    # ----------------------------------------------------------------- confirming

    async def check_payment_status(self, order_id: int, checkout_id: str | None = None) -> Order:
        """Ask the provider about the order's open checkouts (and ``checkout_id``, which a
        webhook named, whatever its state) and apply what it says; then expire the order if
        its time is up.

        PAID pays the order once — or revives an expired/cancelled one, or flags a second
        payment for a refund. FAILED is not final. A checkout the provider will not show is
        retried later. Raises ``PaymentProviderUnavailable`` when the provider cannot be
        asked; nothing changes then.
        """
        order = await self.get(order_id)
        targets = [
            a
            for a in order.attempts
            if a.provider_checkout_id
            and (a.is_open or (checkout_id is not None and a.provider_checkout_id == checkout_id))
        ]
        answers: list[tuple[int, CheckoutAnswer | None]] = []
        failure: CartError | None = None
        for attempt in sorted(targets, key=lambda a: a.number, reverse=True):
            try:
                state = await self._ask(order, attempt, self.provider.get_checkout)
            except PaymentProviderRejected as exc:
                log.warning(
                    "order %s: SumUp will not show checkout of attempt %s (%s)",
                    order.id,
                    attempt.number,
                    exc.details.get("provider_status"),
                )
                answers.append((attempt.id, None))
                continue
            except PaymentProviderUnavailable as exc:
                failure = exc
                continue
            answers.append((attempt.id, _answer(state, attempt)))
        if answers:
            order = await self._apply(order.id, answers)
        if failure is not None and order.status not in SETTLED:
            raise failure
        return await self._expire_if_due(order)

    async def _apply(
        self, order_id: int, answers: Sequence[tuple[int, CheckoutAnswer | None]]
    ) -> Order:
        def rule(o: Order) -> Effects:
            now = self.clock.now()
            effects = Effects()
            for attempt_id, answer in answers:
                if answer is None:
                    o.checkout_unreadable(attempt_id, now)
                else:
                    effects.extend(o.apply_checkout(attempt_id, answer, now))
            return effects

        return await self.transact(order_id, rule)

    async def _close(
        self, order: Order, attempt: PaymentAttempt, checkout_id: str | None = None
    ) -> tuple[str, CheckoutState | None]:
        """Close one checkout at the provider. ``closed``; ``answer`` (it was paid, or is
        otherwise not closable: the state says what it is); or ``unreadable``."""
        try:
            state = await self._ask(order, attempt, self.provider.deactivate_checkout, checkout_id)
        except PaymentProviderRejected:
            # Refused: paid a moment ago, or the provider cannot find it. Ask which.
            try:
                state = await self._ask(order, attempt, self.provider.get_checkout, checkout_id)
            except PaymentProviderRejected:
                return "unreadable", None
        status = attempt_status_from_provider(state.status)
        if status == AttemptStatus.EXPIRED:
            return "closed", state
        return "answer", state

    async def _close_open_checkouts(self, order: Order) -> tuple[Order, dict[int, str]]:
        """Close every open checkout of the order at the provider.

        Returns the order — paid, when a payment turned up while closing — and each
        attempt's outcome, ``closed`` or ``unreadable``. Raises
        ``PaymentProviderUnavailable`` when a checkout could be neither closed nor found paid.
        """
        outcomes: dict[int, str] = {}
        for attempt in order.open_attempts():
            if attempt.provider_checkout_id is None:
                continue
            outcome, state = await self._close(order, attempt)
            if outcome == "answer" and state is not None:
                order = await self._apply(order.id, [(attempt.id, _answer(state, attempt))])
                if order.status in SETTLED:
                    return order, outcomes
                raise PaymentProviderUnavailable(
                    operation="deactivate_checkout",
                    provider_message=f"a checkout of order {order.id} could not be closed",
                )
            outcomes[attempt.id] = outcome
        return order, outcomes

    async def _expire_if_due(self, order: Order) -> Order:
        if not order.is_due_to_expire(self.clock.now()):
            return order
        if order.status == OrderStatus.CLAIMING:
            # Its process died while claiming: give back whatever it took.
            return await self.end(order.id, "claims_not_finished")
        return await self.end(order.id, None)

    async def end(self, order_id: int, cancel_reason: str | None) -> Order:
        """Expire (``cancel_reason`` None) or cancel an unpaid order: its open checkouts are
        closed first, and a payment found while closing wins. Raises
        ``PaymentProviderUnavailable`` when a checkout cannot be closed now."""
        order, outcomes = await self._close_open_checkouts(await self.get(order_id))
        if order.status in SETTLED:
            return order

        def rule(o: Order) -> Effects:
            now = self.clock.now()
            for attempt_id, outcome in outcomes.items():
                if outcome == "closed":
                    o.checkout_closed(attempt_id, now)
                else:
                    o.checkout_unreadable(attempt_id, now)
            if cancel_reason is None:
                return o.expire(now)
            return o.cancel(cancel_reason, now)

        order = await self.transact(order_id, rule)
        log.info("order %s %s", order.id, order.status.value)
        return order

    # ----------------------------------------------------------------- reconciling

    async def reconcile(
        self, *, every: timedelta = timedelta(seconds=20), batch: int = 50
    ) -> ReconcileReport:
        """One pass over the orders to watch: unpaid ones, and any whose checkout could still
        take money. Several workers may run this at once: each claims its own orders with
        ``FOR UPDATE SKIP LOCKED`` and pushes their next look ahead, so no order is asked
        about twice. Unreadable checkouts are looked at with a growing backoff."""
        now = self.clock.now()
        async with self.uow() as tx:
            due = await tx.orders.claim_due_for_check(now, CHECK_LEASE, batch)
        paid = expired = errors = 0
        for order_id in due:
            failed = False
            try:
                after = await self.check_payment_status(order_id)
            except CartError as exc:
                failed = True
                errors += 1
                log.warning("reconcile: order %s: %s", order_id, exc.code)
            else:
                paid += after.status == OrderStatus.PAID
                expired += after.status == OrderStatus.EXPIRED
                failed = any(a.unreadable_since is not None for a in after.open_attempts())
            async with self.uow() as tx:
                failures = await tx.orders.check_failures(order_id) + 1 if failed else 0
                wait = min(every * (2 ** min(max(failures - 1, 0), 16)), MAX_BACKOFF)
                await tx.orders.schedule_check(order_id, self.clock.now() + wait, failures)
        return ReconcileReport(len(due), paid, expired, errors)

    # ----------------------------------------------------------------- refunds

    async def refund(
        self, order_id: int, amount: Decimal | None, requested_by: str | None
    ) -> Order:
        """Refund a paid order (all that is left, or ``amount``) through the provider, with
        the account each payment was made with. Refused by the provider: the order is as it
        was and the error propagates. The provider not answering: the refund is recorded as
        unconfirmed and the order flagged for a person (it may or may not have happened)."""
        now = self.clock.now()
        async with self.uow() as tx:
            order = await tx.orders.get(order_id, for_update=True)
            if order is None:
                raise OrderNotFound()
            in_flight = [r for r in await tx.orders.refunds(order_id) if r.status != "failed"]
            wanted = order.check_refund(amount, reserved=_pending(in_flight))
            pieces = _allocate(order, wanted, in_flight)
            refund_ids = [
                await tx.orders.add_refund(
                    order.id, attempt.id, piece, order.currency, requested_by, now
                )
                for attempt, piece in pieces
            ]
        done = Decimal(0)
        failure: CartError | None = None
        unconfirmed = False
        results: list[tuple[int, str, str | None]] = []
        for (attempt, piece), refund_id in zip(pieces, refund_ids, strict=True):
            if failure is not None:
                results.append((refund_id, "failed", "not tried after an earlier failure"))
                continue
            try:
                await self._refund_one(order, attempt, piece)
            except PaymentProviderRejected as exc:
                failure = exc
                results.append((refund_id, "failed", str(exc.details.get("provider_message"))))
            except PaymentProviderUnavailable as exc:
                failure, unconfirmed = exc, True
                reason = exc.details.get("provider_message") or exc.message
                results.append((refund_id, "unconfirmed", str(reason)))
            else:
                done += piece
                results.append((refund_id, "done", None))

        def rule(o: Order) -> Effects:
            effects = Effects()
            if done:
                effects.extend(o.refunded_by(done, self.clock.now()))
            if unconfirmed:
                o.refund_unconfirmed(self.clock.now())
            return effects

        async with self.uow() as tx:
            for refund_id, status, error in results:
                await tx.orders.finish_refund(refund_id, status, self.clock.now(), error)
        order = await self.transact(order_id, rule)
        if failure is not None:
            raise failure
        log.info("order %s refunded %s", order.id, Money(done, order.currency).as_str())
        return order

    async def _refund_one(self, order: Order, attempt: PaymentAttempt, amount: Decimal) -> None:
        assert attempt.transaction_id is not None
        transaction_id = attempt.transaction_id
        money = Money(amount, order.currency)

        async def call(_: str, credentials: PaymentCredentials) -> None:
            await self.provider.refund(transaction_id, money, credentials)

        await self._ask(order, attempt, call, checkout_id=transaction_id)

    async def refunds(self, order_id: int) -> list[StoredRefund]:
        async with self.uow() as tx:
            return await tx.orders.refunds(order_id)

    # ----------------------------------------------------------------- commands

    async def run_command(self, record: OutboxRecord) -> None:
        """Carry out one command from the outbox. Idempotent: the relay runs each at least
        once. Raises when it should be tried again later."""
        command = CommandType(record.type)
        order_id = record.order_id
        assert order_id is not None
        if command == CommandType.CONFIRM_CLAIMS:
            await self.calendar.confirm_entries_for_order(order_id)
            await self.calendar.confirm_tickets_for_order(order_id)
        elif command == CommandType.RELEASE_CLAIMS:
            await self._release(order_id)
        elif command == CommandType.RECLAIM_CLAIMS:
            await self._reclaim(order_id)
        elif command == CommandType.CLOSE_CHECKOUT:
            await self._close_command(
                order_id, int(record.payload["attempt_id"]), str(record.payload["checkout_id"])
            )

    async def _release(self, order_id: int) -> None:
        """Give an ended order's claims back. A late payment may revive the order before or
        while this runs, and its reclaim may run on another relay meanwhile: a revived order
        is not released, and one revived while the release was under way takes its claims
        again, so the release never has the last word."""
        order = await self.get(order_id)
        if order.status not in ENDED:
            return
        try:
            await self.calendar.release_for_order(order_id)
        finally:
            # Released bookings and tickets are back in the cart.
            await self.cart.forget_summary(owner_of(order))
        if (await self.get(order_id)).status not in ENDED:
            await self._reclaim(order_id)

    async def _reclaim(self, order_id: int) -> None:
        """A late payment revived the order: take its bookings and tickets again and confirm
        them; when they are gone, the payer must be refunded."""
        order = await self.get(order_id)
        owner = owner_of(order)
        try:
            await self.calendar.claim_entries_for_order(order.id, owner, order.page_id)
            if order.user_id is not None:
                await self.calendar.claim_tickets_for_order(order.id, order.user_id, order.page_id)
        except SoldOut:
            await self.calendar.release_for_order(order.id)
            await self.transact(order.id, lambda o: o.claims_lost(self.clock.now()))
            log.warning("order %s paid late, but its claims are gone: flagged", order.id)
            return
        finally:
            # Taken again, they leave the cart (and a failed claim may have moved some).
            await self.cart.forget_summary(owner)
        await self.calendar.confirm_entries_for_order(order.id)
        await self.calendar.confirm_tickets_for_order(order.id)

    async def _close_command(self, order_id: int, attempt_id: int, checkout_id: str) -> None:
        order = await self.get(order_id)
        attempt = order.attempt(attempt_id)
        ours = attempt.provider_checkout_id == checkout_id
        if ours and attempt.status == AttemptStatus.PAID:
            return
        # A closed attempt is closed again: it may have been given up while its checkout was
        # still being made (pay again in another tab, the reconciler), so that checkout was
        # never closed. Closing twice is harmless.
        outcome, state = await self._close(order, attempt, checkout_id)
        if outcome == "unreadable":
            raise PaymentProviderUnavailable(
                provider_message=f"checkout {checkout_id} could not be closed or read"
            )
        if outcome == "closed":
            if ours:
                await self.transact(
                    order_id, lambda o: o.checkout_closed(attempt_id, self.clock.now())
                )
            return
        assert state is not None
        if attempt_status_from_provider(state.status) != AttemptStatus.PAID:
            raise PaymentProviderUnavailable(
                provider_message=f"checkout {checkout_id} could not be closed yet"
            )
        if ours:
            await self._apply(order_id, [(attempt_id, _answer(state, attempt))])
        else:
            # A stray second checkout for one attempt took money: a person refunds it.
            await self.transact(order_id, lambda o: o.paid_twice(self.clock.now()))


def _answer(state: CheckoutState, attempt: PaymentAttempt) -> CheckoutAnswer:
    """What the provider's checkout means for the attempt; a checkout that is not the one
    made for this attempt (reference, amount, currency, merchant) is never a payment."""
    matches = (
        state.reference == attempt.reference
        and (state.currency or "").upper() == attempt.currency
        and state.amount is not None
        and quantize(state.amount, attempt.currency) == attempt.amount
        and (
            not state.merchant_code
            or not attempt.merchant_code
            or state.merchant_code == attempt.merchant_code
        )
    )
    status = attempt_status_from_provider(state.status)
    transaction = next(
        (t for t in state.transactions if t.status.upper() == "SUCCESSFUL"),
        state.transactions[0] if state.transactions else None,
    )
    return CheckoutAnswer(status, transaction.id if transaction else None, matches)


def _pending(refunds: Sequence[StoredRefund]) -> Decimal:
    """Refunds asked for but not (yet) known to be done still hold their amount."""
    return sum((r.amount for r in refunds if r.status in {"requested", "unconfirmed"}), Decimal(0))


def _allocate(
    order: Order, wanted: Decimal, refunds: Sequence[StoredRefund]
) -> list[tuple[PaymentAttempt, Decimal]]:
    """Split a refund over the order's payments, newest first (an order paid twice is
    refunded from the second payment first)."""
    used: dict[int, Decimal] = {}
    for refund in refunds:
        used[refund.attempt_id] = used.get(refund.attempt_id, Decimal(0)) + refund.amount
    pieces: list[tuple[PaymentAttempt, Decimal]] = []
    left = wanted
    for attempt in sorted(order.attempts, key=lambda a: a.number, reverse=True):
        if left <= 0:
            break
        if attempt.status != AttemptStatus.PAID or not attempt.transaction_id:
            continue
        room = attempt.amount - used.get(attempt.id, Decimal(0))
        if room <= 0:
            continue
        piece = min(room, left)
        pieces.append((attempt, piece))
        left -= piece
    if left > 0:
        raise NotRefundable("SumUp has no payment of this order left to refund.")
    return pieces
