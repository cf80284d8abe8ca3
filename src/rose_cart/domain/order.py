"""Order and payment-attempt states and the transitions between them.

Every transition is applied by the database as a guarded update
(``... WHERE status IN <allowed sources>``) so a repeated or concurrent call changes
nothing the second time; this module is the single list of which moves are legal.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum


class OrderStatus(StrEnum):
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


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PAID: frozenset({OrderStatus.PENDING, OrderStatus.FAILED}),
    OrderStatus.FAILED: frozenset({OrderStatus.PENDING}),
    OrderStatus.PENDING: frozenset({OrderStatus.FAILED}),
    OrderStatus.EXPIRED: frozenset({OrderStatus.PENDING, OrderStatus.FAILED}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.PENDING, OrderStatus.FAILED}),
    OrderStatus.REFUNDED: frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED}),
}

ATTEMPT_TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.PENDING: frozenset({AttemptStatus.CREATED, AttemptStatus.FAILED}),
    AttemptStatus.PAID: frozenset(
        {AttemptStatus.CREATED, AttemptStatus.PENDING, AttemptStatus.FAILED}
    ),
    AttemptStatus.FAILED: frozenset({AttemptStatus.CREATED, AttemptStatus.PENDING}),
    AttemptStatus.EXPIRED: frozenset(
        {AttemptStatus.CREATED, AttemptStatus.PENDING, AttemptStatus.FAILED}
    ),
}

#: Orders a visitor can still pay.
PAYABLE = frozenset({OrderStatus.PENDING, OrderStatus.FAILED})

#: SumUp's hosted checkout session lasts 30 minutes; we wait a little longer before
#: giving up on an order so a payment made in the last second is still seen.
HOSTED_SESSION = timedelta(minutes=30)
EXPIRY_GRACE = timedelta(minutes=5)


def order_sources(target: OrderStatus) -> frozenset[OrderStatus]:
    """The states an order may move to ``target`` from."""
    return ORDER_TRANSITIONS.get(target, frozenset())


def attempt_sources(target: AttemptStatus) -> frozenset[AttemptStatus]:
    return ATTEMPT_TRANSITIONS.get(target, frozenset())


def is_stale(last_attempt_at: datetime, now: datetime) -> bool:
    """True once the latest hosted session, plus grace, is over."""
    return now >= last_attempt_at + HOSTED_SESSION + EXPIRY_GRACE


_REF_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def checkout_reference(prefix: str, order_id: int, attempt_id: int) -> str:
    """A unique, at most 64-character reference: page prefix + order + attempt."""
    tail = f"{order_id}-{attempt_id}"
    clean = _REF_SAFE.sub("", prefix or "")[: 64 - len(tail) - 1]
    return f"{clean}-{tail}" if clean else tail


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
