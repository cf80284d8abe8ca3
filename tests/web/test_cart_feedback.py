"""A change to the cart says what it did, a refused one says why beside the cart as it
really is, and the header badge follows the cart."""

from __future__ import annotations

import re

from tests.web.conftest import Web
from tests.web.pages import HTMX_BADGE, HTMX_CART, badge, get, html_of, post, quantity_box, toasts


async def test_a_refused_quantity_is_said_beside_the_cart_as_it_really_is(web: Web) -> None:
    await web.form("/cart/add/", product_id="8", quantity="2")  # eggs: 5 at most
    response = await post(web, "/cart/items/8/", HTMX_CART, quantity="7", next="/cart/")
    html = await html_of(response)
    assert response.status_code == 409
    assert response.headers["X-Cart-Refused"] == "quantity_too_large"
    assert response.headers["HX-Push-Url"] == "false"
    assert ("error", "You can order at most 5 of Free-range eggs (6).") in toasts(html)
    assert quantity_box(html, 8) == "2"  # not the 7 that was refused
    assert "£6.40" in html and badge(html) == "2"
    assert 'class="line-refusal" id="refusal-product-8"' in html
    assert 'aria-invalid="true" aria-describedby="refusal-product-8"' in html
    assert await web.quantities() == {8: 2}


async def test_a_refusal_without_script_is_the_same_page_and_on_a_pages_cart_too(
    web: Web,
) -> None:
    await web.form("/cart/add/", product_id="8", quantity="2")
    plain = await web.form("/cart/items/8/", quantity="7", next="/cart/garden/")
    html = await html_of(plain)
    assert plain.status_code == 409 and "<h1>Community Garden</h1>" in html
    assert quantity_box(html, 8) == "2" and 'data-error-code="quantity_too_large"' in html
    # From a page that is not the cart, the reason waits on that page.
    elsewhere = await web.form("/cart/add/", product_id="8", quantity="4", next="/")
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/"
    assert (
        "error",
        "You can order at most 5 of Free-range eggs (6); your cart already has some.",
    ) in toasts(await get(web, "/"))


async def test_a_refused_add_on_the_shop_front_replaces_the_last_added_message(
    web: Web,
) -> None:
    added = await post(web, "/cart/add/", HTMX_BADGE, product_id="6", quantity="2")
    assert ("success", "Added Seasonal veg box to your cart (now 2). View your cart") in toasts(
        await html_of(added)
    )
    refused = await post(web, "/cart/add/", HTMX_BADGE, product_id="6", quantity="1")
    html = await html_of(refused)
    assert refused.status_code == 409 and refused.headers["X-Cart-Refused"]
    assert 'id="flash" hx-swap-oob="innerHTML"' in html
    [(category, text)] = toasts(html)
    assert category == "error" and "at most 2 of Seasonal veg box" in text
    assert 'id="cart-mini"' in html and badge(html) == "2"
    assert await web.quantities() == {6: 2}


async def test_update_and_remove_say_what_changed_and_the_badge_follows(web: Web) -> None:
    await web.form("/cart/add/", product_id="8", quantity="2")
    await web.form("/cart/add/", product_id="6", quantity="1")
    await web.form("/cart/add/", product_id="1", quantity="3")
    updated = await web.form("/cart/items/8/", quantity="4", next="/cart/")
    assert updated.status_code == 303 and updated.headers["Location"] == "/cart/"
    html = await get(web, "/cart/")
    assert ("success", "Free-range eggs (6): quantity set to 4.") in toasts(html)
    assert badge(html) == "8" and 'data-count="8">8 items from 2 sellers' in html
    await web.form("/cart/items/6/remove/", next="/cart/")
    html = await get(web, "/cart/")
    assert ("success", "Removed Seasonal veg box.") in toasts(html)
    assert badge(html) == "7" and "7 items from 2 sellers" in html
    await web.form("/cart/items/1/", quantity="0", next="/cart/bakery/")
    html = await get(web, "/cart/bakery/")
    assert ("success", "Removed Sourdough loaf.") in toasts(html)
    assert badge(html) == "4"


async def test_cart_forms_take_the_messages_and_the_badge_from_the_answer(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="1")
    html = await get(web, "/cart/")
    form = re.search(r'<form method="post" action="/cart/items/1/"[^>]*>', html)
    assert form is not None
    assert 'hx-select-oob="#flash:innerHTML,#cart-mini"' in form[0]
    assert 'name="next" value="/cart/"' in html
    assert 'aria-label="Cart, 1 item"' in html
    await web.form("/cart/add/", product_id="1", quantity="1")
    assert 'aria-label="Cart, 2 items"' in await get(web, "/cart/")


async def test_cart_lines_label_unit_price_and_line_total(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    html = await get(web, "/cart/")
    assert 'data-label="Price each">£4.50' in html and 'data-label="Total">£9.00' in html
