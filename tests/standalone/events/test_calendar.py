"""The events sibling behind the cart's CalendarService port, on SQLite and PostgreSQL:
what a visitor's cart holds, and what an order claims, confirms and gives back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from rose_cart.domain.errors import (
    CartChanged,
    EntryNotFound,
    InvalidQuantity,
    LoginRequired,
    QuantityTooLarge,
    SiblingUnavailable,
    SoldOut,
    TicketTypeNotFound,
)
from rose_cart.standalone.events.calendar import EventOver, NewEntry, NotBookable
from tests.standalone.events.conftest import BAKERY, GARDEN, Calendar, anon, user

ALICE, BOB = 1, 2


async def ticket_states(cal: Calendar, user_id: int) -> dict[str, int]:
    states: dict[str, int] = {}
    for t in await cal.events.tickets_of(user_id):
        states[t.state] = states.get(t.state, 0) + 1
    return states


# --------------------------------------------------------------------------- availability


async def test_availability_counts_sold_tickets_and_never_pending_ones(cal: Calendar) -> None:
    assert await cal.available(cal.cooks_table) == 5
    # Alice has four in her cart: nobody else loses a seat to a cart.
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 4)
    assert await cal.available(cal.cooks_table) == 5
    # Bob claims two at checkout (reserved), then pays (confirmed): both are sold.
    await cal.events.set_pending_tickets(BOB, cal.cooks_table, 2)
    await cal.events.claim_tickets_for_order(20, BOB, GARDEN)
    assert await cal.available(cal.cooks_table) == 3
    await cal.events.confirm_tickets_for_order(20)
    assert await cal.available(cal.cooks_table) == 3
    # Someone else's paid ticket (checked in at the door still counts).
    await cal.sell(cal.cooks_table, 1)
    assert await cal.available(cal.cooks_table) == 2


# --------------------------------------------------------------------------- the cart


async def test_a_booking_waits_in_the_cart_once_and_can_be_taken_out(cal: Calendar) -> None:
    visitor = anon("anon-session-1")
    first = await cal.events.book(visitor, cal.bread_class)
    again = await cal.events.book(visitor, cal.bread_class)
    assert first.created and not again.created  # a double click books one place
    [pending] = await cal.events.pending_entries(visitor)
    assert pending.id == cal.bread_class
    assert pending.name == "Sourdough bread-making class"
    assert str(pending.cost) == "35.00" and pending.currency == "GBP"
    assert (pending.calendar_container_type, pending.calendar_container_id) == ("page", BAKERY)
    assert pending.state == "pending"
    # Someone else's cart is their own.
    assert await cal.events.pending_entries(anon("another-session")) == []

    assert await cal.events.remove_pending_entry(visitor, cal.bread_class) is True
    assert await cal.events.pending_entries(visitor) == []
    assert await cal.events.remove_pending_entry(visitor, cal.bread_class) is False


async def test_only_bookable_dates_to_come_can_be_booked(cal: Calendar) -> None:
    with pytest.raises(NotBookable):
        await cal.events.book(user(ALICE), cal.supper)
    with pytest.raises(EntryNotFound):
        await cal.events.book(user(ALICE), 999_999)
    cal.clock.advance(days=8)
    with pytest.raises(EventOver):
        await cal.events.book(user(ALICE), cal.bread_class)
    assert await cal.events.pending_entries(user(ALICE)) == []


async def test_setting_a_ticket_quantity_adds_and_removes_pending_tickets(cal: Calendar) -> None:
    assert await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 3) == 3
    tickets = await cal.events.pending_tickets(ALICE)
    assert len(tickets) == 3
    first = tickets[0]
    assert (first.entry_id, first.entry_name) == (cal.supper, "Harvest supper")
    assert (first.ticket_type, first.ticket_type_id) == ("Supper", cal.supper_seat)
    assert str(first.cost) == "18.00" and first.currency == "GBP"
    assert (first.calendar_container_type, first.calendar_container_id) == ("page", GARDEN)
    assert first.state == "pending"

    assert await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 1) == 1
    assert len(await cal.events.pending_tickets(ALICE)) == 1
    assert await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 0) == 0
    assert await cal.events.pending_tickets(ALICE) == []
    assert await cal.events.pending_tickets(BOB) == []


async def test_setting_more_tickets_than_are_left_or_of_an_unknown_type_changes_nothing(
    cal: Calendar,
) -> None:
    await cal.sell(cal.cooks_table, 3)
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 1)
    with pytest.raises(SoldOut) as caught:
        await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 3)
    assert caught.value.details == {
        "entry_id": cal.supper,
        "ticket_type_id": cal.cooks_table,
        "left": 2,
    }
    assert "Harvest supper" in caught.value.message and "only 2" in caught.value.message
    with pytest.raises(TicketTypeNotFound):
        await cal.events.set_pending_tickets(ALICE, 999_999, 1)
    with pytest.raises(QuantityTooLarge):
        await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 100)
    with pytest.raises(InvalidQuantity):
        await cal.events.set_pending_tickets(ALICE, cal.supper_seat, -1)
    assert len(await cal.events.pending_tickets(ALICE)) == 1


async def test_buying_tickets_needs_a_user_and_adds_to_what_the_cart_holds(cal: Calendar) -> None:
    with pytest.raises(LoginRequired):
        await cal.events.add_tickets(None, cal.supper, {cal.supper_seat: 1})
    added = await cal.events.add_tickets(
        ALICE, cal.supper, {cal.supper_seat: 2, cal.cooks_table: 0}
    )
    assert added.added == {cal.supper_seat: 2}
    added = await cal.events.add_tickets(
        ALICE, cal.supper, {cal.supper_seat: 1, cal.cooks_table: 4}
    )
    assert added.in_cart == {cal.supper_seat: 3, cal.cooks_table: 4}
    # All or nothing: two more seats at the cook's table would be six of five.
    with pytest.raises(SoldOut) as caught:
        await cal.events.add_tickets(ALICE, cal.supper, {cal.supper_seat: 1, cal.cooks_table: 2})
    assert caught.value.details["left"] == 5
    with pytest.raises(TicketTypeNotFound):  # a type of another entry
        await cal.events.add_tickets(ALICE, cal.supper, {cal.members_seat: 1})
    with pytest.raises(InvalidQuantity):
        await cal.events.add_tickets(ALICE, cal.supper, {cal.supper_seat: 0})
    assert await cal.events.pending_ticket_counts(ALICE, cal.supper) == {
        cal.supper_seat: 3,
        cal.cooks_table: 4,
    }


# --------------------------------------------------------------------------- claims


async def test_a_claim_takes_only_the_lines_of_the_given_page(cal: Calendar) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)  # bakery
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 2)  # garden
    await cal.events.set_pending_tickets(ALICE, cal.members_seat, 1)  # the co-op's own

    await cal.events.claim_entries_for_order(1, alice, GARDEN)
    await cal.events.claim_tickets_for_order(1, ALICE, GARDEN)
    assert await cal.events.entries_for_order(1) == []
    assert {t.ticket_type_id for t in await cal.events.tickets_for_order(1)} == {cal.supper_seat}

    await cal.events.claim_entries_for_order(2, alice, None)
    await cal.events.claim_tickets_for_order(2, ALICE, None)
    assert await cal.events.entries_for_order(2) == []
    [seat] = await cal.events.tickets_for_order(2)
    assert seat.ticket_type_id == cal.members_seat
    assert (seat.calendar_container_type, seat.calendar_container_id) == ("site", None)

    await cal.events.claim_entries_for_order(3, alice, BAKERY)
    [booking] = await cal.events.entries_for_order(3)
    assert (booking.id, booking.state) == (cal.bread_class, "ordered")
    # The cart holds nothing more.
    assert await cal.events.pending_entries(alice) == []
    assert await cal.events.pending_tickets(ALICE) == []


async def test_a_claim_takes_exactly_what_the_order_was_priced_with(cal: Calendar) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 3)
    # An order priced before the class and the third seat were put in the cart.
    await cal.events.claim_entries_for_order(11, alice, BAKERY, entry_ids=[])
    await cal.events.claim_tickets_for_order(11, ALICE, GARDEN, ticket_counts={cal.supper_seat: 2})
    assert await cal.events.entries_for_order(11) == []
    assert len(await cal.events.tickets_for_order(11)) == 2
    [still] = await cal.events.pending_entries(alice)
    assert still.id == cal.bread_class
    assert len(await cal.events.pending_tickets(ALICE)) == 1
    assert await cal.available(cal.supper_seat) == 38  # only what was claimed is sold


async def test_an_order_priced_with_no_bookings_never_takes_any_even_when_claimed_again(
    cal: Calendar,
) -> None:
    alice = user(ALICE)
    # The order was priced with bread alone; the class and the seat were put in the cart
    # in another tab.
    await cal.events.book(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 1)
    for _ in range(2):  # a double click
        await cal.events.claim_entries_for_order(14, alice, BAKERY, entry_ids=[])
        await cal.events.claim_tickets_for_order(14, ALICE, GARDEN, ticket_counts={})
    # Paid late, after it expired: the re-claim takes back what it took, which was nothing.
    await cal.events.release_for_order(14)
    await cal.events.claim_entries_for_order(14, alice, BAKERY)
    await cal.events.claim_tickets_for_order(14, ALICE, GARDEN)
    assert await cal.events.entries_for_order(14) == []
    assert await cal.events.tickets_for_order(14) == []
    assert len(await cal.events.pending_entries(alice)) == 1
    assert len(await cal.events.pending_tickets(ALICE)) == 1


async def test_a_claim_for_what_has_left_the_cart_takes_nothing(cal: Calendar) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 1)
    with pytest.raises(CartChanged):
        await cal.events.claim_entries_for_order(
            12, alice, BAKERY, entry_ids=[cal.bread_class, cal.supper]
        )
    with pytest.raises(CartChanged):
        await cal.events.claim_tickets_for_order(
            12, ALICE, GARDEN, ticket_counts={cal.supper_seat: 1, cal.cooks_table: 1}
        )
    assert await cal.events.entries_for_order(12) == []
    assert await cal.events.tickets_for_order(12) == []
    assert len(await cal.events.pending_entries(alice)) == 1
    assert len(await cal.events.pending_tickets(ALICE)) == 1
    # Nothing was recorded for that order: checked out again, the cart's lines are claimed.
    await cal.events.claim_entries_for_order(13, alice, BAKERY, entry_ids=[cal.bread_class])
    await cal.events.claim_tickets_for_order(13, ALICE, GARDEN, ticket_counts={cal.supper_seat: 1})
    assert len(await cal.events.entries_for_order(13)) == 1
    assert len(await cal.events.tickets_for_order(13)) == 1


async def test_claim_then_confirm_each_change_things_once(cal: Calendar) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 2)
    for _ in range(2):  # the relay runs a command at least once
        await cal.events.claim_entries_for_order(7, alice, BAKERY)
        await cal.events.claim_tickets_for_order(7, ALICE, GARDEN)
    # The bakery's claim did not take the garden's tickets; the garden's claim for the same
    # order did, once.
    assert [e.state for e in await cal.events.entries_for_order(7)] == ["ordered"]
    assert [t.state for t in await cal.events.tickets_for_order(7)] == ["reserved"] * 2
    assert await cal.available(cal.cooks_table) == 3
    for _ in range(2):
        await cal.events.confirm_entries_for_order(7)
        await cal.events.confirm_tickets_for_order(7)
    assert [e.state for e in await cal.events.entries_for_order(7)] == ["provisional"]
    assert [t.state for t in await cal.events.tickets_for_order(7)] == ["confirmed"] * 2
    # Releasing a paid order gives nothing back.
    await cal.events.release_for_order(7)
    assert await ticket_states(cal, ALICE) == {"confirmed": 2}
    assert await cal.available(cal.cooks_table) == 3


async def test_a_claim_for_an_order_with_nothing_of_that_page_is_remembered_as_empty(
    cal: Calendar,
) -> None:
    # The order had no tickets; tickets put in the cart afterwards are not its own.
    await cal.events.claim_tickets_for_order(8, ALICE, GARDEN)
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 2)
    await cal.events.claim_tickets_for_order(8, ALICE, GARDEN)
    assert await cal.events.tickets_for_order(8) == []
    assert len(await cal.events.pending_tickets(ALICE)) == 2


async def test_release_gives_claims_back_and_claiming_again_takes_exactly_those(
    cal: Calendar,
) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 2)
    await cal.events.claim_entries_for_order(5, alice, BAKERY)
    await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    claimed = {t.id for t in await cal.events.tickets_for_order(5)}

    for _ in range(2):
        await cal.events.release_for_order(5)
    # Back in Alice's cart, not sold.
    assert [e.id for e in await cal.events.pending_entries(alice)] == [cal.bread_class]
    assert {t.id for t in await cal.events.pending_tickets(ALICE)} == claimed
    assert await cal.available(cal.supper_seat) == 40
    # Alice books the class again (already in her cart) and adds a ticket meanwhile.
    assert not (await cal.events.book(alice, cal.bread_class)).created
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 3)

    # A late payment: the order takes back what it had, not the ticket added since.
    for _ in range(2):
        await cal.events.claim_entries_for_order(5, alice, BAKERY)
        await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    assert {t.id for t in await cal.events.tickets_for_order(5)} == claimed
    assert {t.state for t in await cal.events.tickets_for_order(5)} == {"reserved"}
    assert [e.state for e in await cal.events.entries_for_order(5)] == ["ordered"]
    assert len(await cal.events.pending_tickets(ALICE)) == 1
    assert await cal.events.pending_entries(alice) == []
    assert await cal.available(cal.supper_seat) == 38


async def test_a_released_booking_booked_again_meanwhile_comes_back_once(cal: Calendar) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)
    await cal.events.claim_entries_for_order(6, alice, BAKERY)
    # While order 6 waits for payment, Alice books the same class again.
    assert (await cal.events.book(alice, cal.bread_class)).created
    await cal.events.release_for_order(6)
    assert [e.id for e in await cal.events.pending_entries(alice)] == [cal.bread_class]
    await cal.events.claim_entries_for_order(6, alice, BAKERY)
    assert [e.state for e in await cal.events.entries_for_order(6)] == ["ordered"]
    assert await cal.events.pending_entries(alice) == []


async def test_a_reclaim_replaces_what_was_taken_out_of_the_cart_while_enough_are_left(
    cal: Calendar,
) -> None:
    alice = user(ALICE)
    await cal.events.book(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 2)
    await cal.events.claim_entries_for_order(5, alice, BAKERY)
    await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    await cal.events.release_for_order(5)
    # Alice empties her cart; then the expired order's payment turns up after all.
    await cal.events.remove_pending_entry(alice, cal.bread_class)
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 0)
    await cal.events.claim_entries_for_order(5, alice, BAKERY)
    await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    assert [(e.id, e.state) for e in await cal.events.entries_for_order(5)] == [
        (cal.bread_class, "ordered")
    ]
    tickets = await cal.events.tickets_for_order(5)
    assert [(t.ticket_type_id, t.state) for t in tickets] == [(cal.cooks_table, "reserved")] * 2
    assert await cal.available(cal.cooks_table) == 3
    # Once more changes nothing.
    await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    assert await cal.available(cal.cooks_table) == 3


async def test_a_reclaim_raises_sold_out_when_the_seats_went_meanwhile_and_takes_nothing(
    cal: Calendar,
) -> None:
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 2)
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 1)
    await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    await cal.events.release_for_order(5)
    await cal.sell(cal.cooks_table, 4)  # one seat left at the cook's table
    with pytest.raises(SoldOut) as caught:
        await cal.events.claim_tickets_for_order(5, ALICE, GARDEN)
    assert caught.value.details == {
        "entry_id": cal.supper,
        "ticket_type_id": cal.cooks_table,
        "left": 1,
    }
    assert "only 1 “Cook's table” ticket is left for Harvest supper" in caught.value.message
    assert await ticket_states(cal, ALICE) == {"pending": 3}
    assert await cal.available(cal.cooks_table) == 1
    assert await cal.available(cal.supper_seat) == 40


async def test_sold_out_names_the_entry_and_what_is_left_and_claims_nothing(cal: Calendar) -> None:
    await cal.events.set_pending_tickets(ALICE, cal.supper_seat, 1)
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 3)
    await cal.sell(cal.cooks_table, 3)
    with pytest.raises(SoldOut) as caught:
        await cal.events.claim_tickets_for_order(11, ALICE, GARDEN)
    error = caught.value
    assert error.code == "sold_out"
    assert error.details == {"entry_id": cal.supper, "ticket_type_id": cal.cooks_table, "left": 2}
    assert "Harvest supper" in error.message and "only 2" in error.message
    # Neither the seat that was free nor the cook's table: all or nothing.
    assert await ticket_states(cal, ALICE) == {"pending": 4}
    assert await cal.events.tickets_for_order(11) == []
    assert await cal.available(cal.supper_seat) == 40
    # With nothing left, the message says so.
    await cal.sell(cal.cooks_table, 2)
    with pytest.raises(SoldOut) as caught:
        await cal.events.claim_tickets_for_order(11, ALICE, GARDEN)
    assert caught.value.details["left"] == 0
    assert "sold out: none are left" in caught.value.message
    # Taking the extra seats out of the cart lets the rest be claimed.
    await cal.events.set_pending_tickets(ALICE, cal.cooks_table, 0)
    await cal.events.claim_tickets_for_order(11, ALICE, GARDEN)
    assert [t.ticket_type_id for t in await cal.events.tickets_for_order(11)] == [cal.supper_seat]


# --------------------------------------------------------------------------- adoption


async def test_logging_in_gives_the_sessions_bookings_to_the_user(cal: Calendar) -> None:
    visitor, alice = anon("sess-adopt"), user(ALICE)
    bread2 = await cal.events.ensure_entry(
        (await cal.events.ensure_calendar("bakery-classes", "Bakery classes", BAKERY)),
        _another_class(cal),
    )
    await cal.events.book(visitor, cal.bread_class)
    await cal.events.book(visitor, bread2)
    await cal.events.book(alice, cal.bread_class)  # already in her own cart
    for _ in range(2):
        await cal.events.adopt_for_user(ALICE, "sess-adopt")
    assert sorted(e.id for e in await cal.events.pending_entries(alice)) == sorted(
        [cal.bread_class, bread2]
    )
    assert await cal.events.pending_entries(visitor) == []
    # An anonymous order's bookings go with it: released, they come back to the user.
    bob_session = anon("sess-bob")
    await cal.events.book(bob_session, bread2)
    await cal.events.claim_entries_for_order(30, bob_session, BAKERY)
    await cal.events.adopt_for_user(BOB, "sess-bob")
    await cal.events.release_for_order(30)
    assert [e.id for e in await cal.events.pending_entries(user(BOB))] == [bread2]


async def test_an_adopted_anonymous_orders_replacement_booking_is_the_users(
    cal: Calendar,
) -> None:
    visitor = anon("sess-late")
    await cal.events.book(visitor, cal.bread_class)
    await cal.events.claim_entries_for_order(41, visitor, BAKERY)
    await cal.events.release_for_order(41)
    await cal.events.remove_pending_entry(visitor, cal.bread_class)
    await cal.events.adopt_for_user(BOB, "sess-late")  # the order went to Bob with it
    await cal.events.claim_entries_for_order(41, user(BOB), BAKERY)
    assert [(e.id, e.state) for e in await cal.events.entries_for_order(41)] == [
        (cal.bread_class, "ordered")
    ]
    await cal.events.release_for_order(41)
    assert [e.id for e in await cal.events.pending_entries(user(BOB))] == [cal.bread_class]
    assert await cal.events.pending_entries(visitor) == []


def _another_class(cal: Calendar) -> NewEntry:
    start = cal.clock.now() + timedelta(days=21)
    return NewEntry(
        slug="bread-class-2",
        name="Sourdough bread-making class",
        start_at=start,
        end_at=start + timedelta(hours=3),
        cost=Decimal("35"),
        bookable=True,
    )


# --------------------------------------------------------------------------- down


async def test_every_call_fails_as_unavailable_when_the_events_service_is_down(
    cal: Calendar,
) -> None:
    cal.events.down = True
    calls = [
        cal.events.pending_entries(user(ALICE)),
        cal.events.pending_tickets(ALICE),
        cal.events.remove_pending_entry(user(ALICE), cal.bread_class),
        cal.events.set_pending_tickets(ALICE, cal.supper_seat, 1),
        cal.events.claim_entries_for_order(1, user(ALICE), BAKERY),
        cal.events.claim_tickets_for_order(1, ALICE, GARDEN),
        cal.events.confirm_entries_for_order(1),
        cal.events.confirm_tickets_for_order(1),
        cal.events.release_for_order(1),
        cal.events.entries_for_order(1),
        cal.events.tickets_for_order(1),
        cal.events.adopt_for_user(ALICE, "s"),
        cal.events.upcoming(),
        cal.events.book(user(ALICE), cal.bread_class),
    ]
    for call in calls:
        with pytest.raises(SiblingUnavailable):
            await call
    cal.events.down = False
    assert await cal.events.pending_tickets(ALICE) == []
