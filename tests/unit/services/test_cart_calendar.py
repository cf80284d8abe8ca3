"""Bookings and tickets in the cart: shown beside products, counted, removed, changed."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from rose_cart.domain.errors import (
    EntryNotFound,
    InvalidQuantity,
    QuantityTooLarge,
    SiblingUnavailable,
    SoldOut,
    TicketTypeNotFound,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money
from rose_cart.ports import Post
from rose_cart.services.cart import pending_key
from tests.fakes import FakeBlog
from tests.unit.services.conftest import Harness

ANON = CartIdentity(session_id="anon-1")
ALICE = CartIdentity(user_id=7)
BOB = CartIdentity(user_id=8)


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def supper(h: Harness, *, capacity: int | None = None, sold_elsewhere: int = 0) -> None:
    """The bakery's harvest supper (entry 50): adult tickets at 12.00, child at 5.00."""
    adult = h.calendar.add_ticket_type(3, 50, "Harvest supper", "Adult", "12.00", capacity=capacity)
    adult.sold_elsewhere = sold_elsewhere
    h.calendar.add_ticket_type(4, 50, "Harvest supper", "Child", "5.00")


async def alices_mixed_cart(h: Harness) -> None:
    """Two sourdough, a bread class booking and three supper tickets (two types), all from
    the bakery; eggs from the garden."""
    await h.services.cart.add(ALICE, 1, 2)
    await h.services.cart.add(ALICE, 2, 1)
    h.calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    supper(h)
    h.calendar.hold_tickets(7, 3, 2)
    h.calendar.hold_tickets(7, 4, 1)


async def ticket_lines(h: Harness, who: CartIdentity = ALICE) -> dict[int, int]:
    cart = await h.services.cart.cart(who)
    return {
        line.ticket_type_id: line.quantity
        for line in cart.lines
        if line.kind == "ticket" and line.ticket_type_id is not None
    }


async def test_bookings_and_tickets_show_in_their_pages_group_after_the_products(
    harness: Harness,
) -> None:
    await alices_mixed_cart(harness)
    cart = await harness.services.cart.cart(ALICE)
    bakery, garden = cart.groups()
    assert bakery.page is not None and bakery.page.slug == "bakery"
    assert [(line.kind, line.title, line.quantity) for line in bakery.lines] == [
        ("product", "Sourdough", 2),
        ("booking", "Bread-making class", 1),
        ("ticket", "Harvest supper — Adult", 2),  # one line per ticket type
        ("ticket", "Harvest supper — Child", 1),
    ]
    class_line, adult = bakery.lines[1], bakery.lines[2]
    assert class_line.entry_id == 40 and class_line.start_at is not None
    assert (adult.entry_id, adult.ticket_type_id, adult.line_total) == (50, 3, gbp("24.00"))
    assert bakery.subtotal("product") == gbp("9.00")
    assert bakery.subtotal("booking") == gbp("20.00")
    assert bakery.subtotal("ticket") == gbp("29.00")
    assert bakery.total == gbp("58.00")
    assert bakery.counts_text == "2 products · 1 booking · 3 tickets"
    assert [line.kind for line in garden.lines] == ["product"]
    assert cart.count == 7 and cart.total == gbp("61.20")


async def test_the_summary_counts_bookings_and_tickets(harness: Harness) -> None:
    await alices_mixed_cart(harness)
    summary = await harness.services.cart.summary(ALICE)
    assert summary == {
        "count": 7,
        "total": "61.20",
        "currency": "GBP",
        "product_count": 3,
        "product_total": "12.20",
        "calendar_count": 1,
        "calendar_total": "20.00",
        "ticket_count": 3,
        "ticket_total": "29.00",
    }


async def test_an_anonymous_visitor_removes_a_booking_and_the_summary_follows(
    harness: Harness,
) -> None:
    cart = harness.services.cart
    harness.calendar.book(ANON, 40, "Bread-making class", "20.00")
    harness.calendar.book(ANON, 41, "Pastry morning", "15.00")
    harness.calendar.book(BOB, 40, "Bread-making class", "20.00")
    assert (await cart.summary(ANON))["calendar_count"] == 2  # cached now
    change = await cart.remove_booking(ANON, "40")
    assert change.title == "Bread-making class" and change.quantity == 0
    shown = await cart.cart(ANON)
    assert [line.entry_id for line in shown.lines] == [41]
    summary = await cart.summary(ANON)
    assert (summary["calendar_count"], summary["total"]) == (1, "15.00")
    # Someone else's booking of the same class stays theirs.
    assert [line.entry_id for line in (await cart.cart(BOB)).lines] == [40]


@pytest.mark.parametrize("entry_id", ["999", "abc", "0", "-4", None])
async def test_removing_a_booking_that_is_not_in_the_cart_is_not_found(
    harness: Harness, entry_id: object
) -> None:
    harness.calendar.book(ALICE, 40, "Bread-making class")
    harness.calendar.book(BOB, 999, "Bob's class")
    with pytest.raises(EntryNotFound) as raised:
        await harness.services.cart.remove_booking(ALICE, entry_id)
    assert raised.value.code == "entry_not_found"
    assert [line.entry_id for line in (await harness.services.cart.cart(ALICE)).lines] == [40]
    assert [line.entry_id for line in (await harness.services.cart.cart(BOB)).lines] == [999]


async def test_ticket_quantity_goes_up_and_down_and_zero_removes(harness: Harness) -> None:
    cart = harness.services.cart
    await alices_mixed_cart(harness)
    assert (await cart.summary(ALICE))["ticket_count"] == 3  # cached now
    change = await cart.set_tickets(ALICE, "3", "4")
    assert (change.title, change.quantity) == ("Harvest supper — Adult", 4)
    assert await ticket_lines(harness) == {3: 4, 4: 1}
    assert (await cart.summary(ALICE))["ticket_total"] == "53.00"
    await cart.set_tickets(ALICE, 3, 1)
    assert await ticket_lines(harness) == {3: 1, 4: 1}
    await cart.set_tickets(ALICE, 4, 0)
    assert await ticket_lines(harness) == {3: 1}
    change = await cart.remove_tickets(ALICE, 3)
    assert change.quantity == 0 and await ticket_lines(harness) == {}
    summary = await cart.summary(ALICE)
    assert (summary["ticket_count"], summary["count"]) == (0, 4)


async def test_more_tickets_than_are_left_is_sold_out_in_the_events_services_words(
    harness: Harness,
) -> None:
    supper(harness, capacity=10, sold_elsewhere=7)
    harness.calendar.hold_tickets(7, 3, 2)
    with pytest.raises(SoldOut) as raised:
        await harness.services.cart.set_tickets(ALICE, 3, 4)
    assert raised.value.message == "Only 3 left of the Adult tickets for Harvest supper."
    assert raised.value.details == {"entry_id": 50, "ticket_type_id": 3, "left": 3}
    assert await ticket_lines(harness) == {3: 2}
    await harness.services.cart.set_tickets(ALICE, 3, 3)  # exactly what is left is fine
    assert await ticket_lines(harness) == {3: 3}


@pytest.mark.parametrize(
    "type_id,quantity,error",
    [
        (3, "-1", InvalidQuantity),
        (3, "two", InvalidQuantity),
        (3, 1.5, InvalidQuantity),
        (3, True, InvalidQuantity),
        (3, None, InvalidQuantity),
        (3, 100, QuantityTooLarge),
        (4, 1, TicketTypeNotFound),  # a real type, but none of it in Alice's cart
        (999, 1, TicketTypeNotFound),
        ("x", 1, TicketTypeNotFound),
    ],
)
async def test_bad_ticket_changes_are_refused_and_change_nothing(
    harness: Harness, type_id: object, quantity: object, error: type[Exception]
) -> None:
    supper(harness)
    harness.calendar.hold_tickets(7, 3, 2)
    with pytest.raises(error):
        await harness.services.cart.set_tickets(ALICE, type_id, quantity)
    assert await ticket_lines(harness) == {3: 2}
    assert not [c for c in harness.calendar.calls if c[0] == "set_tickets"]


async def test_an_anonymous_cart_has_no_tickets_to_change(harness: Harness) -> None:
    supper(harness)
    with pytest.raises(TicketTypeNotFound):
        await harness.services.cart.set_tickets(ANON, 3, 1)


async def test_events_service_down_changes_nothing_and_says_so(harness: Harness) -> None:
    await alices_mixed_cart(harness)
    harness.calendar.down = True
    with pytest.raises(SiblingUnavailable) as raised:
        await harness.services.cart.set_tickets(ALICE, 3, 5)
    assert "events service" in raised.value.message
    assert raised.value.code == "sibling_unavailable"
    with pytest.raises(SiblingUnavailable):
        await harness.services.cart.remove_booking(ALICE, 40)
    with pytest.raises(SiblingUnavailable):
        await harness.services.cart.remove_tickets(ALICE, 4)
    harness.calendar.down = False
    cart = await harness.services.cart.cart(ALICE)
    assert cart.count == 7 and await ticket_lines(harness) == {3: 2, 4: 1}


class CountingBlog(FakeBlog):
    def __init__(self, posts: Sequence[Post]) -> None:
        super().__init__(posts)
        self.lookups = 0

    async def posts_by_ids(self, ids: Sequence[int]) -> list[Post]:
        self.lookups += 1
        return await super().posts_by_ids(ids)


async def test_the_cart_asks_the_siblings_the_same_number_of_times_whatever_its_size(
    harness: Harness,
) -> None:
    blog = CountingBlog(list(FakeBlog().posts.values()))
    harness.services.cart.catalog.blog = blog
    calendar = harness.calendar
    supper(harness)
    calendar.add_ticket_type(5, 60, "Seed swap", "Entry", "2.00", page_id=102)

    async def sibling_calls() -> tuple[int, int, int]:
        harness.cache.data.clear()  # nothing from an earlier read
        before = (calendar.reads["pending_entries"], calendar.reads["pending_tickets"])
        blog.lookups = 0
        await harness.services.cart.cart(ALICE)
        return (
            calendar.reads["pending_entries"] - before[0],
            calendar.reads["pending_tickets"] - before[1],
            blog.lookups,
        )

    calendar.book(ALICE, 40, "Bread-making class")
    calendar.hold_tickets(7, 3, 1)
    small = await sibling_calls()
    for entry_id in range(41, 47):
        calendar.book(ALICE, entry_id, f"Class {entry_id}", page_id=101 + entry_id % 2)
    calendar.hold_tickets(7, 3, 4)
    calendar.hold_tickets(7, 4, 3)
    calendar.hold_tickets(7, 5, 6)
    large = await sibling_calls()
    assert small == large == (1, 1, 1)
    assert (await harness.services.cart.cart(ALICE)).count == 7 + 14


# ------------------------------------------------------- what the cart keeps of them


async def test_the_cart_asks_the_events_service_again_only_after_a_change(
    harness: Harness,
) -> None:
    calendar, cart = harness.calendar, harness.services.cart
    calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    await cart.cart(ALICE)
    asked = calendar.reads["pending_entries"]
    await cart.cart(ALICE)
    await cart.add(ALICE, 1, 2)  # products change; the bookings did not
    after_add = await cart.cart(ALICE)
    assert calendar.reads["pending_entries"] == asked
    assert [(line.kind, line.quantity) for line in after_add.lines] == [
        ("product", 2),
        ("booking", 1),
    ]
    # The events service books another and says so (its ``cart-changed`` call).
    calendar.book(ALICE, 41, "Pastry morning", "15.00", page_id=101)
    await cart.forget_summary(ALICE)
    after_booking = await cart.cart(ALICE)
    assert calendar.reads["pending_entries"] == asked + 1
    assert [line.entry_id for line in after_booking.lines if line.kind == "booking"] == [40, 41]
    assert (await cart.summary(ALICE))["calendar_count"] == 2


async def test_a_read_overtaken_by_a_booking_change_never_hides_it_afterwards(
    harness: Harness,
) -> None:
    """The events service changes the bookings while the cart is reading them: what that
    read keeps is never served once the change has been announced."""
    calendar, cart = harness.calendar, harness.services.cart
    ask = calendar.pending_entries

    async def overtaken(identity: CartIdentity) -> list[Any]:
        read = await ask(identity)  # the answer as it was...
        calendar.book(ALICE, 41, "Pastry morning", "15.00", page_id=101)
        await cart.forget_summary(ALICE)  # ...then a change, announced before it is kept
        return read

    calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    calendar.pending_entries = overtaken  # type: ignore[method-assign]
    first = await cart.cart(ALICE)
    calendar.pending_entries = ask  # type: ignore[method-assign]
    assert [line.entry_id for line in first.lines] == [40]
    later = await cart.cart(ALICE)
    assert [line.entry_id for line in later.lines] == [40, 41]


async def test_claimed_bookings_leave_the_cart_at_once_and_come_back_when_the_order_ends(
    harness: Harness,
) -> None:
    calendar, cart = harness.calendar, harness.services.cart
    await cart.add(ALICE, 1, 1)
    calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    supper(harness)
    calendar.hold_tickets(7, 3, 2)
    assert (await cart.cart(ALICE)).count == 4  # and the cart keeps what it read
    assert (await cart.summary(ALICE))["count"] == 4

    result = await harness.services.checkout.checkout(ALICE, "bakery")
    assert [line.kind for line in (await cart.cart(ALICE)).lines] == ["product"]
    assert (await cart.summary(ALICE))["calendar_count"] == 0

    await harness.services.payments.end(result.order.id, "changed_mind")
    await harness.relay()  # the release command gives them back
    assert calendar.count("release", result.order.id) == 1
    kinds = [line.kind for line in (await cart.cart(ALICE)).lines]
    assert kinds == ["product", "booking", "ticket"]
    assert (await cart.summary(ALICE))["count"] == 4


async def test_checking_out_bread_alone_keeps_the_cart_the_events_service_sent(
    harness: Harness,
) -> None:
    calendar, cart = harness.calendar, harness.services.cart
    await cart.add(ALICE, 1, 1)  # the bakery's sourdough
    calendar.book(ALICE, 40, "Garden supper", "20.00", page_id=102)  # another page's
    assert (await cart.summary(ALICE))["count"] == 2
    await harness.services.checkout.checkout(ALICE, "bakery")
    asked = calendar.reads["pending_entries"]
    # The bakery's order claimed nothing: the supper the cart kept is still good to show.
    assert (await cart.summary(ALICE))["count"] == 2
    assert [line.kind for line in (await cart.cart(ALICE)).lines] == ["product", "booking"]
    assert calendar.reads["pending_entries"] == asked


async def test_what_the_cart_kept_in_an_older_form_is_asked_for_again(harness: Harness) -> None:
    calendar, cart = harness.calendar, harness.services.cart
    calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    await cart.cart(ALICE)
    key = pending_key(ALICE)
    version, _, _ = harness.cache.data[key].partition(" ")
    harness.cache.data[key] = version + ' {"bookings": []}'  # what another release kept
    asked = calendar.reads["pending_entries"]
    again = await cart.cart(ALICE)
    assert [line.entry_id for line in again.lines] == [40]
    assert calendar.reads["pending_entries"] == asked + 1
