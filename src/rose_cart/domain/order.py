"""The Order aggregate: an order, its payment attempts and a version number.

Every rule that spans the order and its attempts lives here: one live attempt at a time,
what the provider's answer means, when an order may expire or be cancelled, what a late
payment does, what a refund leaves. Each rule mutates the aggregate and returns the
``Effects`` that must follow it — activities for subscribers and commands for the relay
(close a checkout, confirm / release / re-take claims). A service saves the aggregate
with a guarded update (``… WHERE version = :v``) and writes the effects to the outbox in
the same short transaction, so a repeated or concurrent call changes nothing twice.

Nothing here does I/O: time, random parts and the provider's answers are passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rose_cart.domain.errors import (
    AttemptStillOpen,
    CheckoutsStillOpen,
    NotRefundable,
    OrderNotPayable,
    RefundExceedsPayment,
)
from rose_cart.domain.events import (
    Activity,
    order_cancelled,
    order_expired,
    order_paid,
    order_refunded,
)
from rose_cart.domain.money import Money, quantize


class OrderStatus(StrEnum):
    CLAIMING = "claiming"
    PENDING = "pending"
    FAILED = "failed"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class AttemptStatus(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    #: Declined, then closed: it can no longer take money. (Declined and still open is
    #: FAILED: the payer may try again on the same page.)
    DECLINED = "declined"


#: Orders a visitor can still pay.
PAYABLE = frozenset({OrderStatus.PENDING, OrderStatus.FAILED})
#: Orders whose payment was taken (whatever was refunded since).
SETTLED = frozenset({OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED})
#: Orders that gave their claims back: a payment arriving now revives them.
ENDED = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED})
#: Attempts whose hosted checkout could still take money. FAILED is one of them: the
#: payer may retry on the same hosted page.
OPEN_ATTEMPT = frozenset({AttemptStatus.CREATED, AttemptStatus.PENDING, AttemptStatus.FAILED})

#: How long a checkout stays payable unless configured otherwise (SumUp's hosted session
#: lasts 30 minutes).
DEFAULT_VALID_FOR = timedelta(minutes=30)
#: After an attempt's end we wait a little longer before giving up on the order, so a
#: payment made in the last second is still seen.
EXPIRY_GRACE = timedelta(minutes=5)
#: An order stuck while claiming (its process died half-way) is cancelled after this.
CLAIMING_TIMEOUT = timedelta(minutes=10)


class Attention(StrEnum):
    """Why a person must look at an order."""

    UNREADABLE_CHECKOUT = "unreadable_checkout"
    MISMATCHED_CHECKOUT = "mismatched_checkout"
    PAID_TWICE = "paid_twice"
    CLAIMS_LOST = "claims_lost"
    REFUND_UNCONFIRMED = "refund_unconfirmed"


ATTENTION_TEXT = {
    Attention.UNREADABLE_CHECKOUT: "SumUp would not show one of this order's checkouts.",
    Attention.MISMATCHED_CHECKOUT: "A SumUp checkout did not match its order.",
    Attention.PAID_TWICE: "Paid twice through two checkouts: refund one payment.",
    Attention.CLAIMS_LOST: "Paid after its bookings or tickets were gone: refund the payer.",
    Attention.REFUND_UNCONFIRMED: "SumUp did not confirm a refund: check it in SumUp.",
}


# --------------------------------------------------------------------------- commands


class CommandType(StrEnum):
    """What the relay does after a transition; every command is idempotent."""

    CLOSE_CHECKOUT = "close_checkout"
    CONFIRM_CLAIMS = "confirm_claims"
    RELEASE_CLAIMS = "release_claims"
    RECLAIM_CLAIMS = "reclaim_claims"


@dataclass(frozen=True, slots=True)
class Command:
    type: CommandType
    order_id: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Effects:
    """What must follow a transition: written to the outbox with the aggregate."""

    activities: list[Activity] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.activities or self.commands)

    def extend(self, other: Effects) -> None:
        self.activities.extend(other.activities)
        self.commands.extend(other.commands)


# --------------------------------------------------------------------------- aggregate


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The SumUp account an attempt was made with: ``site`` or ``page:<id>``, its merchant
    code, and its API key as stored (encrypted). Status checks, closing and refunds use it,
    whatever the page's settings say later."""

    account: str
    merchant_code: str
    key_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CheckoutAnswer:
    """The provider's view of one attempt's checkout, already checked against the attempt.

    ``matches`` is False when the checkout's reference, amount, currency or merchant is not
    the attempt's: such a checkout is never taken as payment.
    """

    status: AttemptStatus
    transaction_id: str | None = None
    matches: bool = True


@dataclass(slots=True)
class PaymentAttempt:
    """One hosted checkout at the provider."""

    id: int
    order_id: int
    number: int
    status: AttemptStatus
    amount: Decimal
    currency: str
    reference: str
    account: str
    merchant_code: str
    provider_checkout_id: str | None
    hosted_url: str | None
    transaction_id: str | None
    created_at: datetime
    updated_at: datetime
    valid_until: datetime
    unreadable_since: datetime | None = None
    key_token: str | None = field(default=None, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ATTEMPT

    @property
    def account_ref(self) -> AccountRef:
        return AccountRef(self.account, self.merchant_code, self.key_token)

    def _no_longer_payable(self, now: datetime) -> bool:
        """It can no longer take money; one that was declined stays known as declined."""
        closed = AttemptStatus.DECLINED if self.status == AttemptStatus.FAILED else None
        return self._move(closed or AttemptStatus.EXPIRED, now)

    def _move(self, target: AttemptStatus, now: datetime) -> bool:
        if self.status == target:
            return False
        self.status = target
        self.updated_at = now
        return True


@dataclass(slots=True)
class Order:
    """The aggregate root. Load it, call one rule, save it with its version."""

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
    paid_at: datetime | None = None
    needs_refund: bool = False
    attention: str | None = None
    refunded: Decimal = Decimal(0)
    version: int = 0
    attempts: list[PaymentAttempt] = field(default_factory=list)

    # ------------------------------------------------------------------ reading

    @property
    def total_money(self) -> Money:
        return Money(self.total, self.currency)

    @property
    def refunded_money(self) -> Money:
        return Money(self.refunded, self.currency)

    @property
    def is_payable(self) -> bool:
        return self.status in PAYABLE

    @property
    def needs_attention(self) -> bool:
        return self.needs_refund or self.attention is not None

    @property
    def attention_text(self) -> str | None:
        if self.attention is None:
            return None
        try:
            return ATTENTION_TEXT[Attention(self.attention)]
        except ValueError:
            return self.attention

    def attempt(self, attempt_id: int) -> PaymentAttempt:
        for attempt in self.attempts:
            if attempt.id == attempt_id:
                return attempt
        raise KeyError(attempt_id)

    @property
    def latest_attempt(self) -> PaymentAttempt | None:
        return max(self.attempts, key=lambda a: a.number) if self.attempts else None

    def live_attempt(self) -> PaymentAttempt | None:
        """The open attempt, if any (there is at most one the payer is sent to)."""
        latest = self.latest_attempt
        return latest if latest is not None and latest.is_open else None

    def open_attempts(self) -> list[PaymentAttempt]:
        return [a for a in self.attempts if a.is_open]

    @property
    def paid_total(self) -> Decimal:
        """What the payer was charged: one order total per paid attempt."""
        return sum((a.amount for a in self.attempts if a.status == AttemptStatus.PAID), Decimal(0))

    @property
    def refundable(self) -> Decimal:
        return max(self.paid_total - self.refunded, Decimal(0))

    def expires_at(self) -> datetime:
        """When an unpaid order is given up: its last attempt's end plus grace."""
        latest = self.latest_attempt
        if latest is None:
            return self.created_at + DEFAULT_VALID_FOR + EXPIRY_GRACE
        return latest.valid_until + EXPIRY_GRACE

    def is_due_to_expire(self, now: datetime) -> bool:
        if self.status == OrderStatus.CLAIMING:
            return now >= self.created_at + CLAIMING_TIMEOUT
        # Only the clock gives an order up. A closed last checkout is no reason: it may
        # have been closed a moment ago by "pay again", whose new attempt is on its way.
        return self.is_payable and now >= self.expires_at()

    def copy(self) -> Order:
        """An independent copy: a rule applied to it leaves this order as it was."""
        return replace(self, attempts=[replace(a) for a in self.attempts])

    # ------------------------------------------------------------------ rules

    def _set_status(self, target: OrderStatus, now: datetime) -> None:
        self.status = target
        self.updated_at = now

    def claims_held(self, now: datetime) -> None:
        """Claims are held: the order becomes payable. Repeating it changes nothing."""
        if self.status == OrderStatus.CLAIMING:
            self._set_status(OrderStatus.PENDING, now)

    def start_attempt(
        self,
        *,
        now: datetime,
        valid_for: timedelta,
        account: AccountRef,
        prefix: str,
        nonce: str,
    ) -> PaymentAttempt:
        """A new attempt (id 0 until saved). One live attempt at a time: the service closes
        the last one's checkout first, else ``AttemptStillOpen``."""
        if not self.is_payable:
            raise OrderNotPayable()
        if any(a.is_open for a in self.attempts):
            raise AttemptStillOpen()
        number = max((a.number for a in self.attempts), default=0) + 1
        attempt = PaymentAttempt(
            id=0,
            order_id=self.id,
            number=number,
            status=AttemptStatus.CREATED,
            amount=self.total,
            currency=self.currency,
            reference=checkout_reference(prefix, self.id, number, nonce),
            account=account.account,
            merchant_code=account.merchant_code,
            provider_checkout_id=None,
            hosted_url=None,
            transaction_id=None,
            created_at=now,
            updated_at=now,
            valid_until=now + valid_for,
            key_token=account.key_token,
        )
        self.attempts.append(attempt)
        if self.status == OrderStatus.FAILED:
            self._set_status(OrderStatus.PENDING, now)
        else:
            self.updated_at = now
        return attempt

    def checkout_created(
        self, attempt_id: int, checkout_id: str, hosted_url: str, now: datetime
    ) -> Effects:
        """The provider made the attempt's hosted checkout.

        If the attempt was closed meanwhile (pay again in another tab), the new checkout
        must not stay payable: it is closed through the relay.
        """
        attempt = self.attempt(attempt_id)
        if attempt.provider_checkout_id is not None:
            if attempt.provider_checkout_id == checkout_id:
                return Effects()
            # The same reference always gives the same checkout; a second one is closed.
            return Effects(commands=[_close(self.id, attempt.id, checkout_id)])
        attempt.provider_checkout_id = checkout_id
        attempt.hosted_url = hosted_url
        attempt.updated_at = now
        if attempt.status == AttemptStatus.CREATED:
            attempt._move(AttemptStatus.PENDING, now)
            return Effects()
        return Effects(commands=[_close(self.id, attempt.id, checkout_id)])

    def apply_checkout(self, attempt_id: int, answer: CheckoutAnswer, now: datetime) -> Effects:
        """Apply what the provider said about one attempt's checkout.

        PAID pays the order once; paid for an expired or cancelled order revives it (its
        claims are taken again, or it is flagged for a refund); paid when the order was
        already paid through another attempt flags it for a refund. FAILED is not final.
        """
        attempt = self.attempt(attempt_id)
        attempt.unreadable_since = None
        if not answer.matches:
            self.attention = Attention.MISMATCHED_CHECKOUT.value
            self.updated_at = now
            return Effects()
        if answer.status == AttemptStatus.PAID:
            return self._paid(attempt, answer.transaction_id, now)
        if answer.status == AttemptStatus.FAILED:
            if attempt.status in {AttemptStatus.CREATED, AttemptStatus.PENDING}:
                attempt._move(AttemptStatus.FAILED, now)
            if self.status == OrderStatus.PENDING and attempt is self.latest_attempt:
                self._set_status(OrderStatus.FAILED, now)
            return Effects()
        if answer.status == AttemptStatus.EXPIRED:
            if attempt.is_open:
                attempt._no_longer_payable(now)
            return Effects()
        if attempt.status == AttemptStatus.CREATED:
            attempt._move(AttemptStatus.PENDING, now)
        return Effects()

    def _paid(self, attempt: PaymentAttempt, transaction_id: str | None, now: datetime) -> Effects:
        if attempt.status == AttemptStatus.PAID:
            return Effects()  # heard before
        attempt._move(AttemptStatus.PAID, now)
        attempt.transaction_id = transaction_id or attempt.transaction_id
        effects = Effects()
        if self.status in SETTLED:
            # Paid through two checkouts: nothing to deliver twice; a person refunds one.
            self.paid_twice(now)
            return effects
        late = self.status in ENDED
        self._set_status(OrderStatus.PAID, now)
        self.paid_at = now
        for other in self.open_attempts():
            if other.provider_checkout_id:
                effects.commands.append(_close(self.id, other.id, other.provider_checkout_id))
            else:
                other._no_longer_payable(now)
        claims = CommandType.RECLAIM_CLAIMS if late else CommandType.CONFIRM_CLAIMS
        effects.commands.append(Command(claims, self.id))
        effects.activities.append(
            order_paid(self.id, self.total_money.as_str(), self.currency, now, late=late)
        )
        return effects

    def checkout_unreadable(self, attempt_id: int, now: datetime) -> None:
        """The provider would not show the checkout (404/401): retried later, and flagged
        for a person once the order is given up."""
        attempt = self.attempt(attempt_id)
        if attempt.unreadable_since is None:
            attempt.unreadable_since = now
            attempt.updated_at = now

    def checkout_closed(self, attempt_id: int, now: datetime) -> None:
        """The provider confirmed the checkout can no longer take money."""
        attempt = self.attempt(attempt_id)
        attempt.unreadable_since = None
        if attempt.is_open:
            attempt._no_longer_payable(now)

    def abandon_unsent_attempts(self, now: datetime, ending_before: datetime | None = None) -> None:
        """Attempts whose checkout was never made cannot take money: close them (only those
        ending before ``ending_before``, when given: a fresh one may be being made)."""
        for attempt in self.open_attempts():
            if attempt.provider_checkout_id is not None:
                continue
            if ending_before is None or attempt.valid_until <= ending_before:
                attempt._no_longer_payable(now)

    def _end(self, target: OrderStatus, now: datetime) -> Effects:
        self.abandon_unsent_attempts(now)
        still_open = [a for a in self.open_attempts() if a.unreadable_since is None]
        if still_open:
            raise CheckoutsStillOpen()
        if any(a.is_open for a in self.attempts):
            # Unreadable checkouts stay open: the reconciler keeps asking, and a payment
            # found later revives the order or flags it for a refund.
            self.attention = Attention.UNREADABLE_CHECKOUT.value
        self._set_status(target, now)
        return Effects(commands=[Command(CommandType.RELEASE_CLAIMS, self.id)])

    def expire(self, now: datetime) -> Effects:
        """Give up an unpaid order: its checkouts must be closed (or unreadable) first;
        its claims go back to the cart."""
        if self.status not in PAYABLE | {OrderStatus.CLAIMING}:
            return Effects()
        effects = self._end(OrderStatus.EXPIRED, now)
        effects.activities.append(order_expired(self.id, now))
        return effects

    def cancel(self, reason: str, now: datetime) -> Effects:
        """Cancel an unpaid order (e.g. a claim failed); the same rules as expiry."""
        if self.status not in PAYABLE | {OrderStatus.CLAIMING}:
            return Effects()
        effects = self._end(OrderStatus.CANCELLED, now)
        effects.activities.append(order_cancelled(self.id, reason, now))
        return effects

    def paid_twice(self, now: datetime) -> None:
        """Money was taken through a checkout the order no longer counts on."""
        self.needs_refund = True
        self.attention = Attention.PAID_TWICE.value
        self.updated_at = now

    def claims_lost(self, now: datetime) -> None:
        """A late payment's claims could not be taken again: the payer must be refunded."""
        self.needs_refund = True
        self.attention = Attention.CLAIMS_LOST.value
        self.updated_at = now

    def check_refund(self, amount: Decimal | None, reserved: Decimal = Decimal(0)) -> Decimal:
        """The amount a refund would return (all that is left when ``amount`` is None).
        ``reserved``: refunds asked for but not yet known to be done."""
        if self.status not in SETTLED:
            raise NotRefundable()
        left = max(self.refundable - reserved, Decimal(0))
        wanted = left if amount is None else quantize(amount, self.currency)
        if wanted <= 0 or wanted > left:
            raise RefundExceedsPayment(
                f"At most {Money(left, self.currency).display()} can be refunded.",
                refundable=Money(left, self.currency).as_str(),
            )
        return wanted

    def refunded_by(self, amount: Decimal, now: datetime) -> Effects:
        """The provider refunded ``amount``: the order shows it, and a person's flag is
        settled."""
        self.refunded = quantize(self.refunded + amount, self.currency)
        full = self.refunded >= self.paid_total
        self._set_status(OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED, now)
        self.needs_refund = False
        if self.attention in {Attention.PAID_TWICE.value, Attention.CLAIMS_LOST.value}:
            self.attention = None
        return Effects(
            activities=[
                order_refunded(
                    self.id,
                    Money(amount, self.currency).as_str(),
                    self.refunded_money.as_str(),
                    self.currency,
                    now,
                )
            ]
        )

    def refund_unconfirmed(self, now: datetime) -> None:
        self.attention = Attention.REFUND_UNCONFIRMED.value
        self.updated_at = now


def _close(order_id: int, attempt_id: int, checkout_id: str) -> Command:
    return Command(
        CommandType.CLOSE_CHECKOUT,
        order_id,
        {"attempt_id": attempt_id, "checkout_id": checkout_id},
    )


_REF_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def checkout_reference(prefix: str, order_id: int, attempt_number: int, nonce: str) -> str:
    """A reference unique for ever, at most 64 characters: page prefix + order + attempt +
    a random part. The random part keeps references unique across a database restore,
    where order ids start again."""
    tail = f"{order_id}-{attempt_number}-{_REF_SAFE.sub('', nonce)}"
    clean = _REF_SAFE.sub("", prefix or "")[: max(0, 64 - len(tail) - 1)]
    return (f"{clean}-{tail}" if clean else tail)[:64]


def attempt_status_from_provider(raw: str | None) -> AttemptStatus:
    """Map SumUp's checkout status; unknown values are treated as still pending."""
    value = (raw or "").upper()
    if value == "PAID":
        return AttemptStatus.PAID
    if value == "FAILED":
        return AttemptStatus.FAILED
    if value == "EXPIRED":
        return AttemptStatus.EXPIRED
    return AttemptStatus.PENDING
