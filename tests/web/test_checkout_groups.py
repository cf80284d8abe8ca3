"""Every group of the cart checks out on its own, the co-op shop's (site-level) one
included, whatever else the cart holds; the JSON cart says how for each group."""

from __future__ import annotations

import re

from tests.web.conftest import Web
from tests.web.pages import get, html_of


async def test_the_coop_shop_group_checks_out_beside_another_sellers_items(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")  # the bakery
    await web.form("/cart/add/", product_id="11", quantity="1")  # the co-op shop's tote bag
    html = await get(web, "/cart/")
    assert 'action="/cart/site/checkout/"' in html and 'action="/cart/bakery/checkout/"' in html
    assert 'action="/cart/checkout/"' not in html

    response = await web.form("/cart/site/checkout/", idempotency_key="site-key-0001")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://pay.example/")
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    assert (order["total"], order["page"]) == ("8.00", None)
    assert await web.quantities() == {1: 2, 11: 1}  # paid for later, the bag leaves then
    # Nothing of the co-op shop's: said plainly, nothing ordered.
    await web.form("/cart/items/11/remove/")
    empty = await web.form("/cart/site/checkout/", idempotency_key="site-key-0002")
    assert empty.status_code == 409 and "Nothing from the Rose Ash co-op shop" in await html_of(
        empty
    )


async def test_each_json_group_carries_the_checkout_body_for_exactly_that_group(web: Web) -> None:
    await web.login("api-shopper")
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 1})
    await web.client.post("/api/v1/cart/items", json={"product_id": 13, "quantity": 2})
    cart = await web.cart()
    bodies = {(g["page"] or {}).get("slug"): g["checkout"] for g in cart["groups"]}
    urls = {(g["page"] or {}).get("slug"): g["checkout_url"] for g in cart["groups"]}
    assert bodies == {"bakery": {"page_slug": "bakery"}, None: {"site": True}}
    assert urls == {"bakery": "/cart/bakery/checkout/", None: "/cart/site/checkout/"}

    site = next(g for g in cart["groups"] if g["page"] is None)
    response = await web.client.post("/api/v1/checkout", json=site["checkout"])
    assert response.status_code == 201
    created = await response.get_json()
    assert (created["total"], created["currency"]) == ("19.00", "GBP")
    for body in [{"site": True, "page_slug": "bakery"}, {"site": "yes"}]:
        refused = await web.client.post("/api/v1/checkout", json=body)
        assert refused.status_code == 400, body


async def test_the_several_sellers_page_offers_a_working_checkout_for_each(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    await web.form("/cart/add/", product_id="11")
    response = await web.form("/cart/checkout/", idempotency_key="whole-key-0001")
    html = await html_of(response)
    assert response.status_code == 409 and 'data-error-code="multiple_pages"' in html
    # Forms that check out, not links back to the cart that refused.
    assert re.search(r'<form method="post" action="/cart/bakery/checkout/"', html)
    assert re.search(r'<form method="post" action="/cart/site/checkout/"', html)
    assert "Check out Rose Ash co-op shop" in html and 'name="idempotency_key"' in html
