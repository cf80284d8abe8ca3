"""Checking out bookings and tickets: the total, the page, the claims, a sold-out event."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from rose_cart.domain.errors import CartChanged, SoldOut
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import OrderStatus
from rose_cart.ports import Ticket
from tests.unit.services.conftest import ALICE, Harness, checkout_id

ANON = CartIdentity(session_id="anon-1")


def supper(h: Harness, *, capacity: int | None = None, sold_elsewhere: int = 0) -> None:
    """The bakery's harvest supper (entry 50): adult tickets at 12.00."""
    adult = h.calendar.add_ticket_type(3, 50, "Harvest supper", "Adult", "12.00", capacity=capacity)
    adult.sold_elsewhere = sold_elsewhere


async def cart_lines(h: Harness, who: CartIdentity = ALICE) -> list[tuple[str, str, int]]:
    cart = await h.services.cart.cart(who)
    return [(line.kind, line.title, line.quantity) for line in cart.lines]


async def test_checkout_charges_bookings_and_tickets_and_claims_them_with_the_order(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)  # 9.00 of sourdough
    await harness.services.cart.add(ALICE, 2, 1)  # eggs, from the garden: another order
    harness.calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    supper(harness)
    harness.calendar.hold_tickets(7, 3, 2)
    result = await harness.services.checkout.checkout(ALICE, "bakery")
    order = result.order
    assert order.status == OrderStatus.PENDING
    assert (order.page_slug, order.total) == ("bakery", Decimal("53.00"))  # 9 + 20 + 2 x 12
    assert harness.payments.checkouts[checkout_id(result)]["request"].amount.as_str() == "53.00"
    view = await harness.services.orders.view(ALICE, order.id)
    assert [(e.name, e.state) for e in view.bookings] == [("Bread-making class", "ordered")]
    assert [(t.ticket_type, t.state) for t in view.tickets] == [("Adult", "reserved")] * 2
    # What is claimed waits for the payment; the garden's eggs stay in the cart.
    assert await cart_lines(harness) == [("product", "Sourdough", 2), ("product", "Eggs", 1)]

    harness.payments.settle(checkout_id(result), "PAID")
    await harness.services.payments.check_payment_status(order.id)
    await harness.relay()
    view = await harness.services.orders.view(ALICE, order.id)
    assert [e.state for e in view.bookings] == ["provisional"]
    assert [t.state for t in view.tickets] == ["confirmed", "confirmed"]
    assert await cart_lines(harness) == [("product", "Eggs", 1)]


async def test_a_cart_of_only_bookings_is_checked_out_as_its_pages_order(
    harness: Harness,
) -> None:
    harness.calendar.book(ANON, 40, "Bread-making class", "20.00", page_id=101)
    harness.calendar.book(ANON, 41, "Pastry morning", "15.00", page_id=101)
    result = await harness.services.checkout.checkout(ANON)  # the whole cart: one page
    assert (result.order.page_slug, result.order.total) == ("bakery", Decimal("35.00"))
    view = await harness.services.orders.view(ANON, result.order.id)
    assert sorted(e.name for e in view.bookings) == ["Bread-making class", "Pastry morning"]
    assert await cart_lines(harness, ANON) == []


async def test_fewer_tickets_left_than_asked_stops_checkout_and_keeps_the_cart(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 1)
    harness.calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    supper(harness, capacity=10, sold_elsewhere=9)  # someone else bought 9 meanwhile
    harness.calendar.hold_tickets(7, 3, 2)
    before = await cart_lines(harness)
    with pytest.raises(SoldOut) as raised:
        await harness.services.checkout.checkout(ALICE, "bakery", "sold-out-key-1")
    error = raised.value
    assert error.code == "sold_out" and error.status == 409
    assert error.message.startswith(
        "Only 1 left of the Adult tickets for Harvest supper; you asked for 2."
    )
    assert "Nothing was ordered and your cart is as it was" in error.message
    assert error.details == {"entry_id": 50, "ticket_type_id": 3, "left": 1}
    # Nothing is claimed, nothing is payable, the cart keeps every line.
    [order] = await harness.services.orders.list_for(ALICE)
    assert order.status == OrderStatus.CANCELLED
    assert await harness.calendar.entries_for_order(order.id) == []
    assert await harness.calendar.tickets_for_order(order.id) == []
    assert harness.payments.create_calls == 0
    assert await cart_lines(harness) == before

    # With one ticket the same cart goes through, as a new order.
    await harness.services.cart.set_tickets(ALICE, 3, 1)
    result = await harness.services.checkout.checkout(ALICE, "bakery", "sold-out-key-2")
    assert result.order.id != order.id and result.order.total == Decimal("36.50")
    assert result.order.status == OrderStatus.PENDING


def in_another_tab(h: Harness, change: Callable[[], None]) -> None:
    """``change`` happens once, right after checkout has read the cart's bookings and
    tickets and before it claims them: the visitor changes their cart in another tab."""
    read = h.calendar.pending_tickets

    async def then_change(user_id: int) -> list[Ticket]:
        found = await read(user_id)
        h.calendar.pending_tickets = read  # type: ignore[method-assign]
        change()
        return found

    h.calendar.pending_tickets = then_change  # type: ignore[method-assign]


async def test_what_is_added_in_another_tab_during_checkout_stays_in_the_cart_unpaid(
    harness: Harness,
) -> None:
    harness.calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    supper(harness)
    harness.calendar.hold_tickets(7, 3, 2)

    def more() -> None:
        harness.calendar.book(ALICE, 41, "Pastry morning", "15.00", page_id=101)
        harness.calendar.hold_tickets(7, 3, 1)

    in_another_tab(harness, more)
    result = await harness.services.checkout.checkout(ALICE, "bakery")
    assert result.order.total == Decimal("44.00")  # 20 + 2 x 12: what was in the cart
    view = await harness.services.orders.view(ALICE, result.order.id)
    # The order holds exactly what it charges for; the rest waits in the cart.
    assert [e.name for e in view.bookings] == ["Bread-making class"]
    assert [t.state for t in view.tickets] == ["reserved", "reserved"]
    assert await cart_lines(harness) == [
        ("booking", "Pastry morning", 1),
        ("ticket", "Harvest supper — Adult", 1),
    ]


async def test_what_is_removed_in_another_tab_during_checkout_is_never_charged(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    harness.calendar.book(ALICE, 40, "Bread-making class", "20.00", page_id=101)
    harness.calendar.book(ALICE, 41, "Pastry morning", "15.00", page_id=101)

    def remove() -> None:
        harness.calendar.bookings = [b for b in harness.calendar.bookings if b.item.id != 41]

    in_another_tab(harness, remove)
    with pytest.raises(CartChanged) as refused:
        await harness.services.checkout.checkout(ALICE, "bakery")
    assert "nothing was ordered" in refused.value.message.lower()
    [order] = await harness.services.orders.list_for(ALICE)
    assert order.status == OrderStatus.CANCELLED
    assert harness.payments.create_calls == 0  # nobody pays for the class they removed
    assert await cart_lines(harness) == [
        ("product", "Sourdough", 2),
        ("booking", "Bread-making class", 1),
    ]
