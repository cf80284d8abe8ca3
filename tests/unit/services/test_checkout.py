from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from rose_cart.adapters.db import repositories
from rose_cart.domain.errors import (
    CartEmpty,
    MixedCurrency,
    MultiplePages,
    PageNotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    ProductUnavailable,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import AttemptStatus, OrderStatus
from tests.fakes import product
from tests.unit.services.conftest import Harness

ANON = CartIdentity(session_id="visitor-1")
ALICE = CartIdentity(user_id=7)


async def outbox(h: Harness, type_: str, order_id: int) -> int:
    async with h.services.cart.uow() as tx:
        return await tx.outbox.count(type_, str(order_id))


async def test_page_checkout_makes_an_order_with_a_price_snapshot(harness: Harness) -> None:
    cart = harness.services.cart
    await cart.add(ALICE, 1, 2)  # bakery 4.50
    await cart.add(ALICE, 2, 1)  # garden
    result = await harness.services.checkout.checkout(ALICE, "bakery", "key-00000001")
    order = result.order
    assert order.status == OrderStatus.PENDING
    assert (order.total, order.currency, order.page_slug) == (Decimal("9.00"), "GBP", "bakery")
    assert result.payment_url.startswith("https://pay.example/")
    [checkout] = harness.payments.checkouts.values()
    request = checkout["request"]
    assert request.amount.amount == Decimal("9.00")  # type: ignore[attr-defined]
    assert request.reference.startswith(f"rose-{order.id}-1-")  # type: ignore[attr-defined]
    assert request.valid_until == harness.clock.now() + timedelta(minutes=30)  # type: ignore
    assert "/checkout/webhook/" in request.return_url  # type: ignore[attr-defined]
    assert request.redirect_url.endswith(f"/checkout/return/{order.id}/")  # type: ignore
    async with harness.services.cart.uow() as tx:
        items = await tx.orders.items(order.id)
    assert [(i.product_id, i.quantity, i.unit_price) for i in items] == [(1, 2, Decimal("4.50"))]
    async with harness.services.cart.uow() as tx:
        [created] = [r for r in await tx.outbox.for_order(order.id) if r.type == "Create"]
    # The feed hears of the order as it was made: its id, total and currency.
    assert (created.kind, created.object_type, created.object_id, created.order_id) == (
        "activity",
        "rose:Order",
        str(order.id),
        order.id,
    )
    assert created.payload == {"total": "9.00", "currency": "GBP"}
    assert created.published == order.created_at == harness.clock.now()
    assert created.status == "pending"
    # The cart is untouched until the payment is confirmed.
    assert (await cart.cart(ALICE)).count == 3


async def test_prices_are_read_again_at_checkout(harness: Harness) -> None:
    await harness.services.cart.add(ALICE, 1, 1)
    harness.market.products[1] = product(1, "5.25", market=1, title="Sourdough")
    result = await harness.services.checkout.checkout(ALICE, "bakery")
    assert result.order.total == Decimal("5.25")


async def test_empty_cart_and_unknown_page(harness: Harness) -> None:
    with pytest.raises(CartEmpty):
        await harness.services.checkout.checkout(ALICE, None)
    with pytest.raises(CartEmpty):
        await harness.services.checkout.checkout(CartIdentity(), None)
    await harness.services.cart.add(ALICE, 2, 1)
    with pytest.raises(CartEmpty):
        await harness.services.checkout.checkout(ALICE, "bakery")  # nothing from the bakery
    with pytest.raises(PageNotFound):
        await harness.services.checkout.checkout(ALICE, "nowhere")
    assert harness.payments.create_calls == 0


async def test_whole_cart_of_several_pages_is_refused_with_links(harness: Harness) -> None:
    await harness.services.cart.add(ALICE, 1, 1)
    await harness.services.cart.add(ALICE, 2, 1)
    with pytest.raises(MultiplePages) as caught:
        await harness.services.checkout.checkout(ALICE, None)
    links = {p["slug"]: p["checkout_url"] for p in caught.value.details["pages"]}
    assert links == {"bakery": "/cart/bakery/checkout/", "garden": "/cart/garden/checkout/"}


async def test_whole_cart_of_one_page_or_site_items(harness: Harness) -> None:
    await harness.services.cart.add(ALICE, 3, 2)  # site-level tote bags
    result = await harness.services.checkout.checkout(ALICE, None)
    assert result.order.page_id is None and result.order.total == Decimal("16.00")


async def test_mixed_currency_and_unavailable(harness: Harness) -> None:
    await harness.services.cart.add(ALICE, 2, 1)  # garden GBP
    await harness.services.cart.add(ALICE, 5, 1)  # garden EUR
    with pytest.raises(MixedCurrency):
        await harness.services.checkout.checkout(ALICE, "garden")
    await harness.services.cart.remove(ALICE, 5)
    harness.market.products[2] = product(2, "3.20", market=2, title="Eggs", available=False)
    with pytest.raises(ProductUnavailable):
        await harness.services.checkout.checkout(ALICE, "garden")
    assert harness.payments.create_calls == 0


async def test_same_key_or_unchanged_cart_reuses_the_order(harness: Harness) -> None:
    await harness.services.cart.add(ANON, 1, 1)
    first = await harness.services.checkout.checkout(ANON, "bakery", "double-click-1")
    again = await harness.services.checkout.checkout(ANON, "bakery", "double-click-1")
    unchanged = await harness.services.checkout.checkout(ANON, "bakery", "another-key-2")
    assert first.order.id == again.order.id == unchanged.order.id
    assert first.payment_url == again.payment_url == unchanged.payment_url
    assert len(harness.payments.checkouts) == 1
    await harness.services.cart.add(ANON, 1, 1)  # the cart changed: a new order
    changed = await harness.services.checkout.checkout(ANON, "bakery", "third-key-3")
    assert changed.order.id != first.order.id and changed.order.total == Decimal("9.00")


async def test_an_order_whose_announcement_cannot_be_stored_is_not_made_at_all(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    first = await harness.services.checkout.checkout(ALICE, "bakery")
    async with harness.services.cart.uow() as tx:
        [taken] = [r.id for r in await tx.outbox.for_order(first.order.id) if r.type == "Create"]
    # The next order's outbox record cannot be written (its id is taken): neither may the
    # order or its items be, or the feed would never hear of an order that exists.
    monkeypatch.setattr(repositories.uuid, "uuid4", lambda: uuid.UUID(taken))
    await harness.services.cart.add(ALICE, 2, 1)
    with pytest.raises(IntegrityError):
        await harness.services.checkout.checkout(ALICE, "garden")
    assert [o.id for o in await harness.services.orders.list_for(ALICE)] == [first.order.id]
    async with harness.services.cart.uow() as tx:
        assert await tx.orders.items(first.order.id + 1) == []
    assert harness.payments.create_calls == 1
    monkeypatch.undo()
    # Nothing was lost: the garden's order is made when the visitor tries again.
    again = await harness.services.checkout.checkout(ALICE, "garden")
    assert again.order.page_slug == "garden" and again.order.total == Decimal("3.20")
    assert await outbox(harness, "Create", again.order.id) == 1


@pytest.mark.parametrize("error", [PaymentProviderUnavailable(), PaymentProviderRejected()])
async def test_provider_failure_at_create_keeps_cart_and_order_retryable(
    harness: Harness, error: Exception
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    harness.payments.fail_create = error
    with pytest.raises(type(error)):
        await harness.services.checkout.checkout(ALICE, "bakery", "retry-key-1")
    assert (await harness.services.cart.cart(ALICE)).count == 2
    orders = await harness.services.orders.list_for(ALICE)
    assert [o.status for o in orders] == [OrderStatus.PENDING]
    [attempt] = (await harness.services.payments.get(orders[0].id)).attempts
    # Not sent: retried with the same reference, so a checkout SumUp made anyway is reused.
    assert attempt.status == AttemptStatus.CREATED and attempt.provider_checkout_id is None
    # SumUp answers again: the same submission now goes through, on the same order.
    harness.payments.fail_create = None
    result = await harness.services.checkout.checkout(ALICE, "bakery", "retry-key-1")
    assert result.order.id == orders[0].id
    assert len(harness.payments.checkouts) == 1


async def test_a_visitor_who_leaves_mid_checkout_comes_back_to_one_order_and_one_link(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    harness.payments.create_delay = 0.05  # SumUp takes a moment, and the visitor goes away
    leaving = asyncio.create_task(
        harness.services.checkout.checkout(ALICE, "bakery", "leave-key-1")
    )
    for _ in range(5000):
        if harness.payments.create_calls:
            break
        await asyncio.sleep(0.001)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    # The checkout goes on without them: the order gets its payment link.
    [order] = await harness.services.orders.list_for(ALICE)
    for _ in range(500):
        live = (await harness.services.payments.get(order.id)).live_attempt()
        if live is not None and live.hosted_url:
            break
        await asyncio.sleep(0.01)
    assert live is not None and live.hosted_url
    harness.payments.create_delay = 0
    again = await harness.services.checkout.checkout(ALICE, "bakery", "leave-key-1")
    assert again.order.id == order.id and again.payment_url == live.hosted_url
    assert harness.payments.create_calls == 1  # one checkout at SumUp, made once


async def test_sold_out_ticket_cancels_the_order_and_keeps_the_cart(harness: Harness) -> None:
    from rose_cart.domain.errors import SoldOut
    from rose_cart.ports import Ticket

    harness.calendar.tickets = [
        Ticket(1, 50, "Harvest supper", "Adult", 3, Decimal("12.00"), "GBP", "page", 101)
    ]
    harness.calendar.sold_out = True
    await harness.services.cart.add(ALICE, 1, 1)
    with pytest.raises(SoldOut):
        await harness.services.checkout.checkout(ALICE, "bakery")
    [order] = await harness.services.orders.list_for(ALICE)
    assert order.status == OrderStatus.CANCELLED
    assert order.total == Decimal("16.50")  # the ticket was part of the bakery's group
    assert ("release", order.id) in harness.calendar.calls
    assert harness.payments.create_calls == 0
    assert (await harness.services.cart.cart(ALICE)).count == 2
