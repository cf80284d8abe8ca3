"""A visitor's pending bookings and tickets as cache text, and back.

The cart keeps what the events service last said a visitor has pending, so that a cart
page or an add does not ask the events service again while nothing has changed there. It
is kept under a version that every change of the visitor's bookings and tickets replaces
(the cart's own changes, and the events service's ``cart-changed`` call), the same rule
that keeps the cached summary honest.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from rose_cart.ports import CalendarEntry, Ticket


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def dump_pending(entries: list[CalendarEntry], tickets: list[Ticket]) -> str:
    """The text kept for these entries and tickets."""
    return json.dumps(
        {
            "entries": [
                [
                    e.id,
                    e.name,
                    _time(e.start_at),
                    _time(e.end_at),
                    str(e.cost),
                    e.currency,
                    e.calendar_container_type,
                    e.calendar_container_id,
                    e.state,
                ]
                for e in entries
            ],
            "tickets": [
                [
                    t.id,
                    t.entry_id,
                    t.entry_name,
                    t.ticket_type,
                    t.ticket_type_id,
                    str(t.cost),
                    t.currency,
                    t.calendar_container_type,
                    t.calendar_container_id,
                    t.state,
                    _time(t.start_at),
                    t.order_id,
                ]
                for t in tickets
            ],
        },
        separators=(",", ":"),
    )


def load_pending(text: str) -> tuple[list[CalendarEntry], list[Ticket]]:
    """The entries and tickets ``dump_pending`` kept. Raises ValueError (or KeyError,
    TypeError) for text it did not write."""
    data: dict[str, Any] = json.loads(text)
    entries = [
        CalendarEntry(
            id=int(i),
            name=str(name),
            start_at=datetime.fromisoformat(start),
            end_at=_parse_time(end),
            cost=Decimal(cost),
            currency=str(currency),
            calendar_container_type=str(kind),
            calendar_container_id=container,
            state=str(state),
        )
        for i, name, start, end, cost, currency, kind, container, state in data["entries"]
    ]
    tickets = [
        Ticket(
            id=int(i),
            entry_id=int(entry_id),
            entry_name=str(entry_name),
            ticket_type=str(ticket_type),
            ticket_type_id=type_id,
            cost=Decimal(cost),
            currency=str(currency),
            calendar_container_type=str(kind),
            calendar_container_id=container,
            state=str(state),
            start_at=_parse_time(start),
            order_id=order_id,
        )
        for (
            i,
            entry_id,
            entry_name,
            ticket_type,
            type_id,
            cost,
            currency,
            kind,
            container,
            state,
            start,
            order_id,
        ) in data["tickets"]
    ]
    return entries, tickets
