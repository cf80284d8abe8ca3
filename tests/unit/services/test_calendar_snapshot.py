"""What the cart keeps of a visitor's pending bookings and tickets comes back the same."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rose_cart.ports import CalendarEntry, Ticket
from rose_cart.services.calendar_snapshot import dump_pending, load_pending

CLASS = CalendarEntry(
    id=40,
    name="Bread-making class — «sourdough»",
    start_at=datetime(2026, 12, 24, 10, 0, tzinfo=UTC),
    end_at=None,
    cost=Decimal("20.50"),
    currency="GBP",
    calendar_container_type="page",
    calendar_container_id=101,
    state="pending",
)
SUPPER = Ticket(
    id=9,
    entry_id=50,
    entry_name="Harvest supper",
    ticket_type="Adult",
    ticket_type_id=3,
    cost=Decimal("12.00"),
    currency="GBP",
    calendar_container_type="page",
    calendar_container_id=None,
    start_at=datetime(2026, 12, 31, 18, 30, tzinfo=UTC),
)
UNTYPED = Ticket(
    id=10,
    entry_id=50,
    entry_name="Harvest supper",
    ticket_type="Door",
    ticket_type_id=None,
    cost=Decimal("0"),
    currency="GBP",
    calendar_container_type="page",
    calendar_container_id=103,
)


def test_entries_and_tickets_come_back_as_they_were() -> None:
    entries, tickets = load_pending(dump_pending([CLASS], [SUPPER, UNTYPED]))
    assert entries == [CLASS] and tickets == [SUPPER, UNTYPED]
    assert str(tickets[0].cost) == "12.00"  # the price as written, not a float


def test_nothing_pending_is_kept_too() -> None:
    assert load_pending(dump_pending([], [])) == ([], [])


@pytest.mark.parametrize("text", ['{"bookings": []}', "[]", '{"entries": [[1]], "tickets": []}'])
def test_text_it_did_not_write_is_refused(text: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        load_pending(text)
