"""HTTP itself: what a 405 allows, what may be cached, and by whom."""

from __future__ import annotations

import pytest

from tests.web.conftest import Web


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/cart", {"GET"}),
        ("GET", "/api/v1/cart/items", {"POST"}),
        ("POST", "/api/v1/cart/items/1", {"PATCH", "DELETE"}),
        ("GET", "/api/v1/checkout", {"POST"}),
        ("DELETE", "/api/v1/orders/1", {"GET"}),
        ("GET", "/api/v1/orders/1/check", {"POST"}),
        ("PUT", "/cart/", {"GET"}),
        ("GET", "/orders/1/pay/", {"POST"}),
        ("GET", "/internal/actions/cart-changed", {"POST"}),
    ],
)
async def test_a_405_says_which_methods_are_allowed(
    web: Web, method: str, path: str, allowed: set[str]
) -> None:
    response = await web.client.open(path, method=method)
    assert response.status_code == 405
    methods = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= methods and method not in methods
    if path.startswith(("/api/", "/internal/")):
        assert (await response.get_json())["error"]["code"] == "method_not_allowed"


async def _logged_in_with_an_order(web: Web) -> int:
    await web.login("alice")
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    response = await web.client.post("/api/v1/checkout", json={})
    return int((await response.get_json())["order_id"])


def _directives(value: str | None) -> set[str]:
    return {d.strip() for d in (value or "").split(",") if d.strip()}


async def test_per_user_json_is_never_stored_by_anyone(web: Web) -> None:
    order_id = await _logged_in_with_an_order(web)
    for method, path in [
        ("GET", "/api/v1/cart"),
        ("GET", "/api/v1/orders"),
        ("GET", f"/api/v1/orders/{order_id}"),
        ("POST", f"/api/v1/orders/{order_id}/check"),
        ("GET", "/api/v1/orders/999999"),  # an error is per-user too
        ("GET", "/api/v1/admin/orders"),
        ("PATCH", "/api/v1/cart/items/1"),
    ]:
        kwargs = {"json": {"quantity": 2}} if method == "PATCH" else {}
        response = await web.client.open(path, method=method, **kwargs)
        assert _directives(response.headers.get("Cache-Control")) == {"private", "no-store"}, path
        assert "Cookie" in response.headers.get("Vary", ""), path


async def test_pages_are_private(web: Web) -> None:
    order_id = await _logged_in_with_an_order(web)
    for path in [
        "/",
        "/cart/",
        "/cart/overview/",
        "/cart/bakery/",
        "/orders/",
        f"/orders/{order_id}/",
    ]:
        response = await web.client.get(path)
        assert response.status_code == 200, path
        assert "private" in _directives(response.headers.get("Cache-Control")), path
        assert "Cookie" in response.headers.get("Vary", ""), path
    redirect = await web.form("/cart/add/", product_id="2")
    assert "private" in _directives(redirect.headers.get("Cache-Control"))


async def test_the_summary_and_cart_mini_are_private_to_the_visitor(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    for path in ["/internal/cart/summary", "/internal/fragments/cart-mini"]:
        response = await web.client.get(path)
        assert response.status_code == 200
        assert _directives(response.headers.get("Cache-Control")) == {"private"}, path
        assert "Cookie" in response.headers.get("Vary", ""), path


async def test_what_is_the_same_for_everyone_is_not_marked_private(web: Web) -> None:
    for path in ["/api/v1/openapi.json", "/static/css/cart.css", "/market/api/products"]:
        response = await web.client.get(path)
        assert response.status_code == 200
        assert "private" not in _directives(response.headers.get("Cache-Control")), path
