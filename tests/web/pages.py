"""Helpers for reading the HTML pages in web tests."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import TOKEN, Web

#: An in-place change made on a cart page, and one made from the shop front.
HTMX_CART = {"HX-Request": "true", "HX-Target": "cart-body"}
HTMX_BADGE = {"HX-Request": "true", "HX-Target": "cart-mini"}


async def html_of(response: Any) -> str:
    return str((await response.get_data()).decode())


async def get(web: Web, path: str) -> str:
    return await html_of(await web.client.get(path))


async def post(web: Web, path: str, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    """A form post with the visitor's CSRF token, and headers (htmx's, say)."""
    async with web.client.session_transaction() as session:
        session["csrf"] = TOKEN
    return await web.client.post(path, form={"csrf_token": TOKEN, **fields}, headers=headers)


def badge(html: str) -> str:
    found = re.search(r'class="badge[^"]*" data-count="(\d+)"', html)
    assert found is not None
    return found.group(1)


def quantity_box(html: str, product_id: int) -> str:
    found = re.search(rf'id="qty-p{product_id}" name="quantity" value="(\d+)"', html)
    assert found is not None
    return found.group(1)


def toasts(html: str) -> list[tuple[str, str]]:
    """The #flash region's messages: (category, text)."""
    return [
        (category, re.sub(r"<[^>]+>", "", text).strip())
        for category, text in re.findall(
            r'<div class="toast flash-(\w+)".*?<p>(.*?)</p>', html, flags=re.S
        )
    ]
