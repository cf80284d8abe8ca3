"""What a paid order leaves in the cart: the quantities ordered leave it, nothing more."""

from __future__ import annotations

from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import OrderStatus
from tests.unit.services.conftest import Harness

ALICE = CartIdentity(user_id=7)


async def quantities(h: Harness) -> dict[int, int]:
    cart = await h.services.cart.cart(ALICE)
    return {line.product_id: line.quantity for line in cart.lines if line.product_id}


async def pay(h: Harness, quantity: int) -> int:
    """Order ``quantity`` sourdough and return the order id; the payment is not settled."""
    await h.services.cart.add(ALICE, 1, quantity)
    result = await h.services.checkout.checkout(ALICE, "bakery")
    h.payments.settle(result.payment_url.rsplit("/", 1)[-1], "PAID")
    return result.order.id


async def test_raising_the_line_after_checkout_keeps_what_was_not_ordered(
    harness: Harness,
) -> None:
    order_id = await pay(harness, 2)
    # Another tab raises the line while the payer is on the hosted page.
    await harness.services.cart.set_quantity(ALICE, 1, 5)
    order = await harness.services.payments.check_payment_status(order_id)
    assert order.status == OrderStatus.PAID
    assert await quantities(harness) == {1: 3}
    assert (await harness.services.cart.summary(ALICE))["count"] == 3
    # Confirming again takes nothing more.
    await harness.services.payments.check_payment_status(order_id)
    assert await quantities(harness) == {1: 3}


async def test_the_whole_line_ordered_leaves_the_cart(harness: Harness) -> None:
    order_id = await pay(harness, 2)
    await harness.services.payments.check_payment_status(order_id)
    assert await quantities(harness) == {}
    # The next add starts a new line rather than finding the ordered one.
    await harness.services.cart.add(ALICE, 1, 1)
    assert await quantities(harness) == {1: 1}


async def test_a_line_lowered_below_the_order_leaves_the_cart(harness: Harness) -> None:
    order_id = await pay(harness, 3)
    await harness.services.cart.set_quantity(ALICE, 1, 1)
    await harness.services.payments.check_payment_status(order_id)
    assert await quantities(harness) == {}


async def test_a_line_removed_and_added_again_is_not_touched(harness: Harness) -> None:
    order_id = await pay(harness, 2)
    await harness.services.cart.remove(ALICE, 1)
    await harness.services.cart.add(ALICE, 1, 4)  # a new line, not the one ordered
    await harness.services.payments.check_payment_status(order_id)
    assert await quantities(harness) == {1: 4}
