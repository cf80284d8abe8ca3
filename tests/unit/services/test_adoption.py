"""Adoption on login: the anonymous cart, orders and bookings become the user's."""

from __future__ import annotations

from typing import Any

import pytest

from rose_cart.domain.identity import CartIdentity
from rose_cart.ports import UnitOfWork, UnitOfWorkFactory
from tests.unit.services.conftest import Harness

ANON = CartIdentity(session_id="anon-1")
ALICE = CartIdentity(user_id=7)


async def quantities(h: Harness, who: CartIdentity) -> dict[int, int]:
    cart = await h.services.cart.cart(who)
    return {line.product_id: line.quantity for line in cart.lines if line.product_id}


async def order_ids(h: Harness, who: CartIdentity) -> list[int]:
    return sorted(o.id for o in await h.services.orders.list_for(who))


class LineMovesFail:
    """Units of work in which moving the lines fails, after whatever the transaction did
    before: the database going away half-way through an adoption."""

    def __init__(self, inner: UnitOfWorkFactory) -> None:
        self.inner = inner

    def __call__(self, *, one_statement: bool = False) -> _LineMovesFail:
        return _LineMovesFail(self.inner(one_statement=one_statement))


class _LineMovesFail:
    def __init__(self, tx: UnitOfWork) -> None:
        self.tx = tx

    async def __aenter__(self) -> UnitOfWork:
        entered = await self.tx.__aenter__()

        async def lost(*args: Any, **kwargs: Any) -> int:
            raise ConnectionError("the database went away")

        entered.carts.move_to_user = lost  # type: ignore[method-assign]
        return entered

    async def __aexit__(self, *exc: Any) -> None:
        await self.tx.__aexit__(*exc)


async def test_orders_and_lines_are_adopted_together_or_not_at_all(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 2)
    anon_order = (await harness.services.checkout.checkout(ANON, "bakery")).order.id
    cart.uow = LineMovesFail(cart.uow)
    with pytest.raises(ConnectionError):
        await cart.adopt(7, "anon-1")
    # Nothing half-done: the order is still the anonymous visitor's, like the lines.
    assert await order_ids(harness, ALICE) == []
    assert await order_ids(harness, ANON) == [anon_order]
    assert await quantities(harness, ANON) == {1: 2}
    cart.uow = harness.services.checkout.uow  # the database is back; the next try does it all
    await cart.adopt(7, "anon-1")
    assert await order_ids(harness, ALICE) == [anon_order]
    assert await quantities(harness, ALICE) == {1: 2}


async def test_an_idempotency_key_used_before_and_after_login_stays_with_the_users_order(
    harness: Harness,
) -> None:
    cart, checkout = harness.services.cart, harness.services.checkout
    await cart.add(ALICE, 1, 1)
    mine = (await checkout.checkout(ALICE, "bakery", "same-key-123")).order.id
    await cart.add(ANON, 2, 1)
    theirs = (await checkout.checkout(ANON, "garden", "same-key-123")).order.id
    await cart.adopt(7, "anon-1")
    assert await order_ids(harness, ALICE) == sorted([mine, theirs])
    again = await checkout.checkout(ALICE, "bakery", "same-key-123")
    assert again.order.id == mine
    adopted = await harness.services.orders.owned(ALICE, theirs)
    assert adopted.idempotency_key is None


async def test_events_service_down_adopts_lines_and_orders_and_owes_the_bookings(
    harness: Harness,
) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 2)
    anon_order = (await harness.services.checkout.checkout(ANON, "bakery")).order.id
    await cart.add(ANON, 2, 3)
    harness.calendar.adoption_down = True
    adoption = await cart.adopt(7, "anon-1")
    assert not adoption.bookings_adopted
    assert await quantities(harness, ALICE) == {1: 2, 2: 3}
    assert await order_ids(harness, ALICE) == [anon_order]
    assert not await cart.adopt_bookings(7, "anon-1")
    assert (await cart.summary(ALICE))["count"] == 5
    harness.calendar.adoption_down = False
    assert await cart.adopt_bookings(7, "anon-1")
    assert ("adopt", (7, "anon-1")) in harness.calendar.calls


async def test_market_down_still_adopts_the_lines(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ALICE, 1, 2)
    await cart.add(ANON, 1, 3)
    await cart.add(ANON, 2, 1)
    harness.cache.data.clear()
    harness.market.down = True
    adoption = await cart.adopt(7, "anon-1")
    assert (adoption.moved, adoption.merged, adoption.items) == (2, 1, 4)
    harness.market.down = False
    assert await quantities(harness, ALICE) == {1: 5, 2: 1}


async def test_adoption_counts_the_items_carried_over(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ANON, 1, 3)
    await cart.add(ANON, 2, 5)
    adoption = await cart.adopt(7, "anon-1")
    assert (adoption.moved, adoption.merged, adoption.items) == (2, 0, 8)
    assert adoption.bookings_adopted
