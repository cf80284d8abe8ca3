"""The small things every page relies on: the icon, the names in the nav, the login
hint."""

from __future__ import annotations

import re

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
