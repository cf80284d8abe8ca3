from __future__ import annotations

import pytest

from tests.web.conftest import Web


async def test_shop_front_lists_pages_and_products(web: Web) -> None:
    response = await web.client.get("/")
    html = (await response.get_data()).decode()
    assert response.status_code == 200
    for text in [
        "Rose Ash Bakery",
        "Community Garden",
        "Sourdough loaf",
        "Add to cart",
        "Sold out",
    ]:
        assert text in html
    assert 'name="csrf_token"' in html


async def test_add_from_form_then_cart_page_shows_it_grouped(web: Web) -> None:
    response = await web.form("/cart/add/", product_id="1", quantity="2", next="/")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    await web.form("/cart/add/", product_id="6", quantity="1")
    await web.form("/cart/add/", product_id="11", quantity="1")
    html = (await (await web.client.get("/cart/")).get_data()).decode()
    assert "Sourdough loaf" in html and "Seasonal veg box" in html and "tote bag" in html
    assert (
        html.index("Community Garden")
        < html.index("Rose Ash Bakery")
        < html.index("Rose Ash co-op shop")
    )
    assert "£32.00" in html  # 2 x 4.50 + 15.00 + 8.00


async def test_anonymous_cookie_is_issued_on_first_add_and_is_httponly_lax(web: Web) -> None:
    await web.client.get("/cart/")
    async with web.client.session_transaction() as session:
        assert "sid" not in session  # looking does not make a cart
    response = await web.form("/cart/add/", product_id="1")
    cookie = response.headers.get("Set-Cookie", "")
    assert "rose_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    async with web.client.session_transaction() as session:
        assert len(session["sid"]) >= 24
    assert await web.quantities() == {1: 1}


async def test_set_quantity_and_remove_forms(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    await web.form("/cart/add/", product_id="2", quantity="1")
    response = await web.form("/cart/items/1/", quantity="5")
    assert response.status_code == 303
    assert await web.quantities() == {1: 5, 2: 1}
    await web.form("/cart/items/1/", quantity="0")
    await web.form("/cart/items/2/remove/")
    assert await web.quantities() == {}
    html = (await (await web.client.get("/cart/")).get_data()).decode()
    assert "Your cart is empty" in html


async def test_overview_and_page_cart(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    await web.form("/cart/add/", product_id="7", quantity="1")
    html = (await (await web.client.get("/cart/overview/")).get_data()).decode()
    assert "Rose Ash Bakery" in html and "£9.00" in html and "£2.50" in html
    assert "/cart/bakery/checkout/" in html and "/cart/garden/checkout/" in html
    page = await web.client.get("/cart/bakery/")
    page_html = (await page.get_data()).decode()
    assert page.status_code == 200 and "Sourdough loaf" in page_html
    assert "Salad leaves" not in page_html
    missing = await web.client.get("/cart/no-such-page/")
    assert missing.status_code == 404
    assert "That page does not exist" in (await missing.get_data()).decode()


@pytest.mark.parametrize(
    "fields,status,code",
    [
        ({"product_id": "999"}, 404, "product_not_found"),
        ({"product_id": "x"}, 404, "product_not_found"),
        ({"product_id": "1", "quantity": "0"}, 400, "invalid_quantity"),
        ({"product_id": "1", "quantity": "-3"}, 400, "invalid_quantity"),
        ({"product_id": "1", "quantity": "lots"}, 400, "invalid_quantity"),
        ({"product_id": "1", "quantity": "11"}, 409, "quantity_too_large"),
        ({"product_id": "1", "quantity": "99999999999"}, 400, "invalid_quantity"),
        ({"product_id": "5"}, 409, "product_unavailable"),
    ],
)
async def test_bad_form_input_gets_a_page_with_the_reason_and_cart_unchanged(
    web: Web, fields: dict[str, str], status: int, code: str
) -> None:
    await web.form("/cart/add/", product_id="2", quantity="1")
    response = await web.form("/cart/add/", **fields)
    html = (await response.get_data()).decode()
    assert response.status_code == status
    assert f'data-error-code="{code}"' in html
    assert await web.quantities() == {2: 1}


async def test_form_without_csrf_token_is_refused(web: Web) -> None:
    response = await web.client.post("/cart/add/", form={"product_id": "1"})
    assert response.status_code == 400
    assert "csrf_failed" in (await response.get_data()).decode()
    assert await web.quantities() == {}


async def test_login_adopts_the_anonymous_cart_and_says_so(web: Web) -> None:
    # Alice already has 2 eggs in her own cart from another device.
    await web.login("alice")
    await web.form("/cart/add/", product_id="8", quantity="2")
    await web.client.post("/auth/logout", json={})
    await web.form("/cart/add/", product_id="8", quantity="4")  # max 5: merge caps
    await web.form("/cart/add/", product_id="1", quantity="1")
    await web.login("alice")
    html = (await (await web.client.get("/cart/")).get_data()).decode()
    assert "merged the 5 items you added before logging in" in html
    assert await web.quantities() == {8: 5, 1: 1}
    cart = await web.cart()
    assert cart["user_id"] is not None


async def test_login_with_only_new_items_says_they_were_kept(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    await web.login("newcomer")
    html = (await (await web.client.get("/cart/")).get_data()).decode()
    assert "kept the 2 items you added before logging in" in html
    assert await web.quantities() == {1: 2}


async def test_dev_login_form_and_logout(web: Web) -> None:
    response = await web.form("/auth/dev-login", username="bob", next="/cart/")
    assert response.status_code == 303 and response.headers["Location"] == "/cart/"
    html = (await (await web.client.get("/cart/")).get_data()).decode()
    assert "bob" in html and "Log out" in html
    bad = await web.form("/auth/dev-login", username="<script>")
    assert bad.status_code == 400
    await web.form("/auth/logout")
    html = (await (await web.client.get("/")).get_data()).decode()
    assert "Log in" in html


async def test_security_headers_and_static_assets(web: Web) -> None:
    response = await web.client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    css = await web.client.get("/static/vendor/pico.min.css")
    assert css.status_code == 200
    js = await web.client.get("/static/vendor/htmx.min.js")
    assert js.status_code == 200


async def test_htmx_add_returns_the_badge_and_message(web: Web) -> None:
    async with web.client.session_transaction() as session:
        session["csrf"] = "t"
    response = await web.client.post(
        "/cart/add/",
        form={"csrf_token": "t", "product_id": "1", "quantity": "3"},
        headers={"HX-Request": "true", "HX-Target": "cart-mini"},
    )
    html = (await response.get_data()).decode()
    assert response.status_code == 200
    assert 'id="cart-mini"' in html and 'data-count="3"' in html
    assert "Added Sourdough loaf" in html


async def test_unknown_url_is_a_friendly_404(web: Web) -> None:
    response = await web.client.get("/nope")
    assert response.status_code == 404
    assert "find that" in (await response.get_data()).decode()


async def test_market_products_json(web: Web) -> None:
    products = await (await web.client.get("/market/api/products")).get_json()
    assert len(products) >= 10
    by_slug = {p["slug"]: p for p in products}
    assert by_slug["sourdough-loaf"] == {
        "id": 1,
        "slug": "sourdough-loaf",
        "title": "Sourdough loaf",
        "unit_price": "4.50",
        "regular_price": None,
        "currency": "GBP",
        "page_slug": "bakery",
        "marketplace_slug": "bakery-counter",
        "available": True,
        "max_per_order": 10,
    }
    assert by_slug["cinnamon-buns"]["regular_price"] == "6.00"  # on special offer
    assert by_slug["tote-bag"]["page_slug"] is None  # the co-op's own shop
    assert by_slug["hot-cross-buns"]["available"] is False
    assert {p["page_slug"] for p in products} == {"bakery", "garden", None}
