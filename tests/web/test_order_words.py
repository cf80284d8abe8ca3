"""The payer's order pages in plain words: declined, expired or paid, when (in one named
time zone) and how much; and what the orders page says to someone logged out."""

from __future__ import annotations

import re

from tests.web.conftest import Web
from tests.web.pages import get


async def test_payments_are_told_as_declined_or_paid_with_a_named_time_zone(web: Web) -> None:
    await web.login("payer")
    await web.form("/cart/add/", product_id="1")
    location = (await web.form("/cart/bakery/checkout/", idempotency_key="decl-key-0001")).headers[
        "Location"
    ]
    first = location.rsplit("/", 1)[-1]
    web.payments.settle(first, "FAILED")
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    await web.client.get(f"/checkout/return/{order['id']}/")
    again = (await web.form(f"/orders/{order['id']}/pay/")).headers["Location"]
    web.payments.settle(again.rsplit("/", 1)[-1], "PAID")
    await web.client.get(f"/checkout/return/{order['id']}/")

    html = await get(web, f"/orders/{order['id']}/")
    states = re.findall(r'class="payment-row" data-attempt-status="(\w+)"', html)
    assert states == ["declined", "paid"]
    rows = re.findall(r'<tr class="payment-row".*?</tr>', html, flags=re.S)
    assert "declined" in rows[0] and "nothing was taken" in rows[0] and "expired" not in rows[0]
    assert "£4.50" in rows[1]
    # Times name their zone; SumUp's own checkout ids mean nothing to a payer.
    assert re.search(r"placed \d\d \w{3} \d{4}, \d\d:\d\d (GMT|BST|UTC)<", html)
    for checkout_id in (first, again.rsplit("/", 1)[-1]):
        assert checkout_id not in html
    listing = await get(web, "/orders/")
    assert re.search(r'data-label="Placed">\d\d \w{3} \d{4}, \d\d:\d\d (GMT|BST|UTC)<', listing)


async def test_the_orders_page_says_logging_in_shows_your_orders(web: Web) -> None:
    await web.login("leaver")
    assert "You haven't ordered anything yet." in await get(web, "/orders/")
    await web.form("/auth/logout")
    html = await get(web, "/orders/")
    assert "Log in to see your orders" in html
    assert "You haven't ordered anything yet." not in html
