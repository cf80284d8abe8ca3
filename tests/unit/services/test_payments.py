from __future__ import annotations

from decimal import Decimal

import pytest

from rose_cart.domain.errors import OrderNotFound, OrderNotPayable, PaymentProviderUnavailable
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import AttemptStatus, OrderStatus
from tests.unit.services.conftest import ALICE, Harness, checked_out, checkout_id, outbox

BOB = CartIdentity(user_id=8)


async def test_paid_checkout_pays_the_order_once_and_empties_the_ordered_lines(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    await harness.services.cart.add(ALICE, 2, 1)  # another page's line stays in the cart
    harness.payments.settle(checkout_id(result), "PAID")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.PAID and order.paid_at is not None
    again = await harness.services.payments.check_payment_status(result.order.id)
    assert again.status == OrderStatus.PAID
    assert await outbox(harness, "rose:OrderPaid", order.id) == 1
    cart = await harness.services.cart.cart(ALICE)
    assert [line.product_id for line in cart.lines] == [2]
    # Bookings and tickets are confirmed by the relay, after the paying transaction.
    assert ("confirm_entries", order.id) not in harness.calendar.calls
    await harness.relay()
    await harness.relay()
    assert harness.calendar.count("confirm_entries", order.id) == 1
    assert harness.calendar.count("confirm_tickets", order.id) == 1
    assert sorted(harness.subscriber.types()) == ["Create", "rose:OrderPaid"]
    assert (await harness.services.cart.summary(ALICE))["count"] == 1
    view = await harness.services.orders.view(ALICE, order.id)
    assert [a.status for a in view.attempts] == [AttemptStatus.PAID]
    assert view.attempts[0].transaction_id == f"txn_{checkout_id(result)}"


async def test_failed_is_not_final(harness: Harness) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "FAILED")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.FAILED
    assert (await harness.services.cart.cart(ALICE)).count == 2
    # The payer retries on the same hosted page and pays.
    harness.payments.settle(checkout_id(result), "PAID")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.PAID


async def test_pay_again_makes_a_new_attempt_and_closes_the_old_checkout(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "FAILED")
    await harness.services.payments.check_payment_status(result.order.id)
    start = await harness.services.orders.pay_again(ALICE, result.order.id)
    assert start.payment_url != result.payment_url
    assert harness.payments.deactivated == [checkout_id(result)]
    view = await harness.services.orders.view(ALICE, result.order.id)
    assert view.order.status == OrderStatus.PENDING
    # The old checkout is closed, and still known as declined (what happened to the payer).
    assert [a.status for a in view.attempts] == [AttemptStatus.DECLINED, AttemptStatus.PENDING]
    harness.payments.settle(start.payment_url.rsplit("/", 1)[-1], "PAID")
    paid = await harness.services.payments.check_payment_status(result.order.id)
    assert paid.status == OrderStatus.PAID


async def test_pay_again_finds_a_payment_made_meanwhile_instead_of_charging_twice(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "PAID")
    start = await harness.services.orders.pay_again(ALICE, result.order.id)
    assert start.order.status == OrderStatus.PAID
    assert start.payment_url.endswith(f"/checkout/return/{result.order.id}/")
    assert len(harness.payments.checkouts) == 1


async def test_provider_down_at_confirmation_keeps_pending_then_reconciler_confirms(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "PAID")
    harness.payments.fail_get = PaymentProviderUnavailable()
    with pytest.raises(PaymentProviderUnavailable):
        await harness.services.payments.check_payment_status(result.order.id)
    view = await harness.services.orders.view(ALICE, result.order.id, check=True)
    assert view.order.status == OrderStatus.PENDING and view.check_error is not None
    report = await harness.services.payments.reconcile()
    assert (report.checked, report.errors, report.paid) == (1, 1, 0)
    harness.payments.fail_get = None
    harness.clock.advance(seconds=30)
    report = await harness.services.payments.reconcile()
    assert (report.checked, report.paid) == (1, 1)
    assert (await harness.services.orders.owned(ALICE, result.order.id)).status == OrderStatus.PAID


async def test_unpaid_order_expires_after_the_session_and_grace(harness: Harness) -> None:
    result = await checked_out(harness)
    harness.clock.advance(minutes=34)
    await harness.services.payments.reconcile()
    assert (
        await harness.services.orders.owned(ALICE, result.order.id)
    ).status == OrderStatus.PENDING
    harness.clock.advance(minutes=2)
    report = await harness.services.payments.reconcile()
    assert report.expired == 1
    order = await harness.services.orders.owned(ALICE, result.order.id)
    assert order.status == OrderStatus.EXPIRED
    assert await outbox(harness, "rose:OrderExpired", order.id) == 1
    assert harness.payments.deactivated == [checkout_id(result)]  # closed before expiring
    await harness.relay()
    assert ("release", order.id) in harness.calendar.calls
    assert (await harness.services.cart.cart(ALICE)).count == 2  # the cart is kept
    with pytest.raises(OrderNotPayable):
        await harness.services.orders.pay_again(ALICE, order.id)
    # A new checkout of the same cart makes a new order.
    fresh = await harness.services.checkout.checkout(ALICE, "bakery")
    assert fresh.order.id != order.id


async def test_a_checkout_sumup_ended_leaves_the_order_payable_until_its_time_is_up(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "EXPIRED")
    order = await harness.services.payments.check_payment_status(result.order.id)
    # Closed (by SumUp, or by "pay again" in another tab): the order can still be paid.
    assert order.status == OrderStatus.PENDING and order.live_attempt() is None
    start = await harness.services.orders.pay_again(ALICE, order.id)
    assert start.payment_url != result.payment_url
    harness.clock.advance(minutes=36)
    assert (await harness.services.payments.check_payment_status(order.id)).status == (
        OrderStatus.EXPIRED
    )


async def test_a_paid_amount_that_differs_is_not_taken_as_payment(harness: Harness) -> None:
    from rose_cart.ports import CheckoutRequest

    result = await checked_out(harness)
    data = harness.payments.checkouts[checkout_id(result)]
    request = data["request"]
    assert isinstance(request, CheckoutRequest)
    from rose_cart.domain.money import Money

    data["request"] = CheckoutRequest(
        request.reference,
        Money(Decimal("0.01"), "GBP"),
        request.description,
        request.return_url,
        request.redirect_url,
    )
    harness.payments.settle(checkout_id(result), "PAID")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.PENDING


async def test_orders_are_visible_to_their_owner_only(harness: Harness) -> None:
    result = await checked_out(harness)
    assert [o.id for o in await harness.services.orders.list_for(ALICE)] == [result.order.id]
    assert await harness.services.orders.list_for(BOB) == []
    for who, oid in [
        (BOB, result.order.id),
        (ALICE, 999999),
        (ALICE, "abc"),
        (CartIdentity(session_id="x"), result.order.id),
    ]:
        with pytest.raises(OrderNotFound):
            await harness.services.orders.view(who, oid)


async def test_webhook_is_only_a_trigger(harness: Harness) -> None:
    result = await checked_out(harness)
    order = result.order
    harness.payments.settle(checkout_id(result), "PAID")
    orders = harness.services.orders
    body = {"event_type": "CHECKOUT_STATUS_CHANGED", "id": checkout_id(result)}
    assert not await orders.handle_webhook(999, order.webhook_token, body)
    assert not await orders.handle_webhook(order.id, "wrong-token", body)
    assert await orders.handle_webhook(
        order.id, order.webhook_token, {"event_type": "SOMETHING_ELSE", "id": body["id"]}
    )
    assert await orders.handle_webhook(
        order.id, order.webhook_token, {"event_type": "CHECKOUT_STATUS_CHANGED", "id": "chk_x"}
    )
    assert (await orders.owned(ALICE, order.id)).status == OrderStatus.PENDING
    assert harness.payments.get_calls == 0
    assert await orders.handle_webhook(order.id, order.webhook_token, body)
    assert (await orders.owned(ALICE, order.id)).status == OrderStatus.PAID
