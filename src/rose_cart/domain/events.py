"""Past-tense domain events, written to the outbox as ActivityStreams-style records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Activity:
    """One outbox record: ``type`` is the ActivityStreams verb, ``object_type`` the noun."""

    type: str
    object_type: str
    object_id: str
    published: datetime
    payload: dict[str, Any] = field(default_factory=dict)


def order_created(order_id: int, total: str, currency: str, at: datetime) -> Activity:
    return Activity(
        "Create", "rose:Order", str(order_id), at, {"total": total, "currency": currency}
    )


def order_paid(
    order_id: int, total: str, currency: str, at: datetime, *, late: bool = False
) -> Activity:
    """``late``: the payment arrived after the order had expired or been cancelled."""
    payload: dict[str, Any] = {"total": total, "currency": currency}
    if late:
        payload["late"] = True
    return Activity("rose:OrderPaid", "rose:Order", str(order_id), at, payload)


def order_expired(order_id: int, at: datetime) -> Activity:
    return Activity("rose:OrderExpired", "rose:Order", str(order_id), at)


def order_cancelled(order_id: int, reason: str, at: datetime) -> Activity:
    return Activity("rose:OrderCancelled", "rose:Order", str(order_id), at, {"reason": reason})


def order_refunded(
    order_id: int, amount: str, refunded_total: str, currency: str, at: datetime
) -> Activity:
    return Activity(
        "rose:OrderRefunded",
        "rose:Order",
        str(order_id),
        at,
        {"amount": amount, "refunded_total": refunded_total, "currency": currency},
    )
