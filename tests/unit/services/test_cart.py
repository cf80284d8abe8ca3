from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rose_cart.domain.cart import MAX_LINES
from rose_cart.domain.errors import (
    CartError,
    InvalidQuantity,
    ProductNotFound,
    ProductUnavailable,
    QuantityTooLarge,
    SiblingUnavailable,
    TooManyLines,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.services.cart import summary_key, summary_version_key
from tests.fakes import product
from tests.gates import GatedCalendar
from tests.unit.services.conftest import Harness

ANON = CartIdentity(session_id="anon-1")
ALICE = CartIdentity(user_id=7)


async def quantities(h: Harness, who: CartIdentity) -> dict[int, int]:
    cart = await h.services.cart.cart(who)
    return {line.product_id: line.quantity for line in cart.lines if line.product_id}


async def test_add_creates_then_adds_to_the_line(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 2)
    change = await cart.add(ANON, "1", "3")
    assert change.quantity == 5
    assert await quantities(harness, ANON) == {1: 5}
    shown = await cart.cart(ANON)
    assert shown.total is not None and shown.total.amount == Decimal("22.50")


async def test_set_quantity_and_zero_removes(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 2)
    await cart.add(ANON, 2, 1)
    await cart.set_quantity(ANON, 1, 4)
    assert await quantities(harness, ANON) == {1: 4, 2: 1}
    await cart.set_quantity(ANON, 1, "0")
    assert await quantities(harness, ANON) == {2: 1}
    await cart.remove(ANON, 2)
    assert await quantities(harness, ANON) == {}


async def test_removed_product_can_be_added_again(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 2)
    await cart.remove(ANON, 1)
    await cart.add(ANON, 1, 1)
    assert await quantities(harness, ANON) == {1: 1}


@pytest.mark.parametrize(
    "product_id,quantity,error",
    [
        (999, 1, ProductNotFound),
        ("abc", 1, ProductNotFound),
        (-1, 1, ProductNotFound),
        (1, 0, InvalidQuantity),
        (1, -2, InvalidQuantity),
        (1, "two", InvalidQuantity),
        (1, "1.5", InvalidQuantity),
        (1, 11, QuantityTooLarge),  # max_per_order 10
        (3, 100, QuantityTooLarge),  # hard cap 99
        (1, 10**12, QuantityTooLarge),
        (4, 1, ProductUnavailable),
    ],
)
async def test_bad_adds_leave_the_cart_unchanged(
    harness: Harness, product_id: object, quantity: object, error: type[CartError]
) -> None:
    await harness.services.cart.add(ANON, 2, 1)
    with pytest.raises(error):
        await harness.services.cart.add(ANON, product_id, quantity)
    assert await quantities(harness, ANON) == {2: 1}


async def test_add_past_the_line_maximum_is_refused_and_keeps_the_line(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 2, 4)
    with pytest.raises(QuantityTooLarge):
        await cart.add(ANON, 2, 2)  # max 5
    assert await quantities(harness, ANON) == {2: 4}


async def test_set_quantity_errors(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 1)
    with pytest.raises(ProductNotFound):
        await cart.set_quantity(ANON, 2, 1)  # not in the cart
    with pytest.raises(QuantityTooLarge):
        await cart.set_quantity(ANON, 1, 50)
    with pytest.raises(InvalidQuantity):
        await cart.set_quantity(ANON, 1, -1)
    assert await quantities(harness, ANON) == {1: 1}


async def test_line_limit(harness: Harness) -> None:
    harness.market.products.update({i: product(i, "1.00", market=3) for i in range(100, 202)})
    cart = harness.services.cart
    for pid in range(100, 100 + MAX_LINES):
        await cart.add(ANON, pid, 1)
    with pytest.raises(TooManyLines):
        await cart.add(ANON, 100 + MAX_LINES, 1)
    await cart.add(ANON, 100, 1)  # adding to an existing line is still fine
    assert len(await quantities(harness, ANON)) == MAX_LINES


async def test_market_down_gives_a_clear_error_and_keeps_the_cart(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 1)
    harness.cache.data.clear()
    harness.market.down = True
    with pytest.raises(SiblingUnavailable):
        await cart.add(ANON, 2, 1)
    harness.market.down = False
    assert await quantities(harness, ANON) == {1: 1}


async def test_adoption_moves_and_merges_capped(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ALICE, 2, 3)
    await cart.add(ALICE, 3, 1)
    await cart.add(ANON, 2, 4)  # 3 + 4 > max 5 -> capped
    await cart.add(ANON, 1, 2)  # new to Alice
    adoption = await cart.adopt(7, "anon-1")
    assert (adoption.moved, adoption.merged) == (2, 1)
    assert await quantities(harness, ALICE) == {1: 2, 2: 5, 3: 1}
    assert await quantities(harness, ANON) == {}
    assert ("adopt", (7, "anon-1")) in harness.calendar.calls
    assert (await cart.adopt(7, "anon-1")).moved == 0  # nothing left to adopt


async def test_grouping_and_summary(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 2)
    await cart.add(ANON, 2, 1)
    await cart.add(ANON, 3, 1)
    shown = await cart.cart(ANON)
    assert [g.page.slug if g.page else None for g in shown.groups()] == ["bakery", "garden", None]
    summary = await cart.summary(ANON)
    assert summary["count"] == 4
    assert summary["product_total"] == "20.20"
    assert summary["calendar_count"] == 0 and summary["ticket_count"] == 0


async def test_summary_cache_hit_touches_no_sibling_and_change_refreshes(
    harness: Harness,
) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 1)
    assert (await cart.summary(ANON))["count"] == 1
    calls = harness.market.product_calls
    assert (await cart.summary(ANON))["count"] == 1
    assert harness.market.product_calls == calls
    await cart.add(ANON, 1, 1)
    assert (await cart.summary(ANON))["count"] == 2


async def held_summary(
    h: Harness, who: CartIdentity
) -> tuple[GatedCalendar, asyncio.Task[dict[str, object]]]:
    """Start a summary read of ``who`` and hold it once it has read the cart's lines."""
    calendar = GatedCalendar()
    h.services.cart.calendar = calendar
    read = asyncio.create_task(h.services.cart.summary(who))
    await asyncio.wait_for(calendar.reached.wait(), 5)
    return calendar, read


async def test_a_summary_read_overtaken_by_a_change_is_never_served_after_it(
    harness: Harness,
) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 1)
    calendar, read = await held_summary(harness, ANON)
    await cart.add(ANON, 1, 1)  # commits and invalidates while the read is held
    calendar.gate.set()
    assert (await read)["count"] == 1  # what the cart held when it looked
    assert (await cart.summary(ANON))["count"] == 2
    calls = harness.market.product_calls
    assert (await cart.summary(ANON))["count"] == 2  # and that one is cached again
    assert harness.market.product_calls == calls


async def test_a_late_summary_stays_unread_when_the_cache_forgot_everything(
    harness: Harness,
) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 1)
    calendar, read = await held_summary(harness, ANON)
    await cart.add(ANON, 1, 1)
    harness.cache.data.clear()  # evicted: the versions with the summaries
    calendar.gate.set()
    await read
    assert (await cart.summary(ANON))["count"] == 2


async def test_forgetting_a_summary_also_beats_a_read_in_flight(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ALICE, 1, 1)
    calendar, read = await held_summary(harness, ALICE)
    # A sibling changed something behind the summary and says so (cart-changed).
    harness.market.products[1] = product(1, "5.00", market=1, title="Sourdough")
    harness.cache.data.pop("product:1", None)
    await cart.forget_summary(ALICE)
    calendar.gate.set()
    await read
    assert (await cart.summary(ALICE))["total"] == "5.00"


async def test_empty_identity_has_an_empty_cart(harness: Harness) -> None:
    shown = await harness.services.cart.cart(CartIdentity())
    assert shown.is_empty


async def test_add_and_show_answers_with_the_cart_after_the_add(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ALICE, 2, 1)
    change, shown = await cart.add_and_show(ALICE, 1, 2)
    assert (change.title, change.quantity) == ("Sourdough", 2)
    assert {line.product_id: line.quantity for line in shown.lines} == {2: 1, 1: 2}
    change, shown = await cart.add_and_show(ALICE, 1, 3)
    assert change.quantity == 5
    assert {line.product_id: line.quantity for line in shown.lines} == {2: 1, 1: 5}
    with pytest.raises(QuantityTooLarge):
        await cart.add_and_show(ALICE, 1, 6)  # sourdough stops at 10 a line
    assert await quantities(harness, ALICE) == {2: 1, 1: 5}
    assert (await cart.summary(ALICE))["count"] == 6


async def test_add_and_show_keeps_the_line_limit(harness: Harness) -> None:
    harness.market.products.update({i: product(i, "1.00", market=3) for i in range(100, 202)})
    cart = harness.services.cart
    for pid in range(100, 100 + MAX_LINES):
        await cart.add(ANON, pid, 1)
    with pytest.raises(TooManyLines):
        await cart.add_and_show(ANON, 100 + MAX_LINES, 1)
    _, shown = await cart.add_and_show(ANON, 100, 1)  # an existing line still grows
    assert len(shown.lines) == MAX_LINES
    assert next(line.quantity for line in shown.lines if line.product_id == 100) == 2


async def test_the_cart_page_read_leaves_the_summary_cached(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 1)
    await cart.add(ANON, 2, 1)  # the summary is out of date now
    shown, summary = await cart.cart_and_summary(ANON)
    assert shown.count == 2 and summary["count"] == 2
    # The page stored it under the current version: the next summary is a hit.
    version = harness.cache.data[summary_version_key(ANON)]
    assert harness.cache.data[summary_key(ANON)].startswith(f"{version} ")
    assert (await cart.summary(ANON))["count"] == 2
    await cart.add(ANON, 1, 1)
    assert (await cart.cart_and_summary(ANON))[1]["count"] == 3
