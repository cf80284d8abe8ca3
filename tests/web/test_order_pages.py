"""What the payer reads on their order page when money and order have parted ways."""

from __future__ import annotations

from rose_cart.domain.order import Order
from tests.web.conftest import Web


async def _paid_late_with_places_gone(web: Web) -> int:
    await web.login("olive")
    await web.form("/cart/add/", product_id="1", quantity="1")
    response = await web.form("/cart/bakery/checkout/", idempotency_key="late-key-0001")
    checkout_id = response.headers["Location"].rsplit("/", 1)[-1]
    [summary] = await (await web.client.get("/api/v1/orders")).get_json()
    services = web.app.extensions["rose_cart"]
    web.clock.advance(minutes=36)
    await services.payments.reconcile()
    web.payments.settle(checkout_id, "PAID")  # SumUp took the money after all
    await services.payments.check_payment_status(summary["id"], checkout_id)

    def gone(order: Order) -> None:
        order.claims_lost(web.clock.now())

    await services.payments.transact(summary["id"], gone)
    return int(summary["id"])


async def test_the_payer_is_told_in_plain_words_that_a_refund_is_owed(web: Web) -> None:
    order_id = await _paid_late_with_places_gone(web)
    page = (await (await web.client.get(f"/orders/{order_id}/")).get_data()).decode()
    assert 'data-needs-refund="true"' in page
    assert "we owe you a refund" in page and "no longer free" in page
    order = await (await web.client.get(f"/api/v1/orders/{order_id}")).get_json()
    assert order["status"] == "paid" and order["needs_refund"] is True


async def test_an_expired_order_says_nothing_was_taken_and_offers_no_payment(web: Web) -> None:
    await web.login("pete")
    await web.form("/cart/add/", product_id="1", quantity="1")
    await web.form("/cart/bakery/checkout/", idempotency_key="exp-key-00001")
    [summary] = await (await web.client.get("/api/v1/orders")).get_json()
    web.clock.advance(minutes=36)
    await web.app.extensions["rose_cart"].payments.reconcile()
    page = (await (await web.client.get(f"/orders/{summary['id']}/")).get_data()).decode()
    assert 'data-order-status="expired"' in page and "Nothing was taken" in page
    assert "Pay now" not in page
    assert web.payments.live() == []
