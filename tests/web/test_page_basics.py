"""The small things every page relies on: the icon, the names in the nav, the login
hint, and one request-log line per request that never shows a secret."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import Web
from tests.web.pages import get


async def test_every_page_names_the_icon_and_the_icon_is_served(web: Web) -> None:
    html = await get(web, "/")
    assert 'rel="icon" href="/static/favicon.svg"' in html
    for path in ["/favicon.ico", "/static/favicon.svg"]:
        response = await web.client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "image/svg+xml"
        assert b"<svg" in await response.get_data()


async def test_the_nav_names_the_overview_as_its_heading_does(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    html = await get(web, "/cart/overview/")
    assert '<a href="/cart/overview/">Carts by seller</a>' in html
    assert "<h1>Carts by seller</h1>" in html


async def test_the_login_form_says_which_names_it_takes(web: Web) -> None:
    html = await get(web, "/")
    field = re.search(r'<input type="text" name="username"[^>]*>', html, flags=re.S)
    assert field is not None
    assert 'title="Letters, digits, dots, dashes or underscores, no spaces' in field[0]
    assert 'placeholder="any name, no spaces"' in field[0]
    assert 'aria-describedby="login-hint"' in field[0] and 'id="login-hint"' in html


async def test_one_log_line_per_request_without_query_or_webhook_token(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rose_cart.access")
    await web.client.get("/cart/?next=/secret-token")
    await web.form("/cart/add/", product_id="1")
    location = (await web.form("/cart/bakery/checkout/", idempotency_key="log-key-0001")).headers[
        "Location"
    ]
    request = web.payments.checkouts[location.rsplit("/", 1)[-1]]["request"]
    webhook_path = urlsplit(request.return_url).path
    token = webhook_path.rstrip("/").rsplit("/", 1)[-1]
    await web.client.post(webhook_path, json={})
    lines = [r.getMessage() for r in caplog.records if r.name == "rose_cart.access"]
    assert re.fullmatch(r"GET /cart/ 200 \d+\.\d ms", lines[0]), lines
    assert any(re.fullmatch(r"POST /cart/add/ 303 \d+\.\d ms", line) for line in lines)
    [hook] = [line for line in lines if "/checkout/webhook/" in line]
    assert token not in hook and hook.startswith("POST /checkout/webhook/")
    assert not any("secret-token" in line or token in line for line in lines)
