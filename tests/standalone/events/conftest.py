"""The events sibling on a migrated database (SQLite and PostgreSQL), with a small
calendar: the bakery's bookable class, the garden's supper with a five-seat ticket type,
and an evening on the co-op's own calendar (no page)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from rose_cart.domain.identity import CartIdentity
from rose_cart.standalone.events.calendar import NewEntry, NewTicketType, ReferenceCalendar
from tests.fakes import FakeClock

BAKERY, GARDEN = 101, 102
#: Users and orders of other people, far from the ids the tests use.
_OTHERS = itertools.count(90_000)


@dataclass(frozen=True)
class Calendar:
    """The test calendar's ids."""

    events: ReferenceCalendar
    clock: FakeClock
    bread_class: int
    supper: int
    supper_seat: int  # capacity 40, £18
    cooks_table: int  # capacity 5, £30
    members_evening: int  # on the site's own calendar
    members_seat: int  # capacity 30, £5

    async def sell(self, ticket_type_id: int, count: int) -> int:
        """Tickets bought and paid by someone else; returns their order id."""
        user_id, order_id = next(_OTHERS), next(_OTHERS)
        await self.events.set_pending_tickets(user_id, ticket_type_id, count)
        await self.events.claim_tickets_for_order(
            order_id, user_id, await self.page_of(ticket_type_id)
        )
        await self.events.confirm_tickets_for_order(order_id)
        return order_id

    async def page_of(self, ticket_type_id: int) -> int | None:
        return None if ticket_type_id == self.members_seat else GARDEN

    async def available(self, ticket_type_id: int) -> int:
        for entry in await self.events.upcoming():
            for t in entry.ticket_types:
                if t.id == ticket_type_id:
                    return t.available
        raise AssertionError(f"no ticket type {ticket_type_id}")


async def make_calendar(events: ReferenceCalendar, clock: FakeClock) -> Calendar:
    now = clock.now()
    bakery = await events.ensure_calendar("bakery-classes", "Bakery classes", BAKERY)
    garden = await events.ensure_calendar("garden-gatherings", "Garden gatherings", GARDEN)
    coop = await events.ensure_calendar("coop", "Co-op meetings", None)
    bread = await events.ensure_entry(
        bakery,
        NewEntry(
            slug="bread-class",
            name="Sourdough bread-making class",
            start_at=now + timedelta(days=7),
            end_at=now + timedelta(days=7, hours=3),
            cost=Decimal("35"),
            bookable=True,
        ),
    )
    supper = await events.ensure_entry(
        garden,
        NewEntry(
            slug="harvest-supper",
            name="Harvest supper",
            start_at=now + timedelta(days=14),
            end_at=now + timedelta(days=14, hours=4),
            cost=Decimal("0"),
            ticket_types=(
                NewTicketType("Supper", Decimal("18"), 40),
                NewTicketType("Cook's table", Decimal("30"), 5),
            ),
        ),
    )
    evening = await events.ensure_entry(
        coop,
        NewEntry(
            slug="members-evening",
            name="Members' evening",
            start_at=now + timedelta(days=10),
            end_at=None,
            cost=Decimal("0"),
            ticket_types=(NewTicketType("Seat", Decimal("5"), 30),),
        ),
    )
    by_name = {}
    for entry in await events.upcoming():
        for t in entry.ticket_types:
            by_name[(entry.id, t.name)] = t.id
    return Calendar(
        events=events,
        clock=clock,
        bread_class=bread,
        supper=supper,
        supper_seat=by_name[(supper, "Supper")],
        cooks_table=by_name[(supper, "Cook's table")],
        members_evening=evening,
        members_seat=by_name[(evening, "Seat")],
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cal(database_url: str, clock: FakeClock) -> AsyncIterator[Calendar]:
    events = ReferenceCalendar.for_url(database_url, clock)
    try:
        yield await make_calendar(events, clock)
    finally:
        await events.aclose()


def user(user_id: int) -> CartIdentity:
    return CartIdentity(user_id=user_id)


def anon(session_id: str) -> CartIdentity:
    return CartIdentity(session_id=session_id)
