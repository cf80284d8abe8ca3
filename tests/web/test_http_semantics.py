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
