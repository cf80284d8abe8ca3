"""Pages are rendered without Flask's idle blueprint context processor, and still see what
templates need."""

from __future__ import annotations

import flask.templating

from tests.web.conftest import Web


async def test_no_page_runs_flasks_idle_context_processor(web: Web) -> None:
    idle = flask.templating._default_template_ctx_processor
    assert all(idle not in found for found in web.app.template_context_processors.values())
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    page = await (await web.client.get("/cart/")).get_data(as_text=True)
    # The header's badge and the forms' token come from the context the app still gives.
    assert 'data-count="2"' in page and 'name="csrf_token"' in page
