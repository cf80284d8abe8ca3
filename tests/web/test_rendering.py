"""Pages are rendered without Flask's idle blueprint context processor, and still see what
templates need."""

from __future__ import annotations

from dataclasses import replace

import flask.templating

from tests.web.conftest import Web


async def test_no_page_runs_flasks_idle_context_processor(web: Web) -> None:
    idle = flask.templating._default_template_ctx_processor
    assert all(idle not in found for found in web.app.template_context_processors.values())
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    page = await (await web.client.get("/cart/")).get_data(as_text=True)
    # The header's badge and the forms' token come from the context the app still gives.
    assert 'data-count="2"' in page and 'name="csrf_token"' in page


async def test_a_products_own_text_is_shown_as_text_on_the_cart_page(web: Web) -> None:
    # The cart's rows escape their values by hand (once each); the market's text is the
    # one part of them a seller writes.
    product = web.market.products[1]
    web.market.products[1] = replace(
        product, title='Rye & "Seeds" <b>bold</b>', image='/img.svg?a=1&b="x"'
    )
    await web.form("/cart/add/", product_id="1", quantity="2")
    page = await (await web.client.get("/cart/")).get_data(as_text=True)
    assert "<b>bold</b>" not in page
    shown = "Rye &amp; &#34;Seeds&#34; &lt;b&gt;bold&lt;/b&gt;"
    assert f'<span class="title">{shown}</span>' in page
    assert f'aria-label="Quantity of {shown}"' in page
    assert f'aria-label="Remove {shown}"' in page
    assert 'src="/img.svg?a=1&amp;b=&#34;x&#34;"' in page
