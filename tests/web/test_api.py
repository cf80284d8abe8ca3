from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Web


async def test_cart_round_trip_with_shapes(web: Web) -> None:
    empty = await web.cart()
    assert empty == {
        "count": 0,
        "total": "0.00",
        "currency": None,
        "totals": [],
        "user_id": None,
        "groups": [],
    }
    response = await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    assert response.status_code == 201
    cart: dict[str, Any] = await response.get_json()
    assert cart["count"] == 2 and cart["total"] == "9.00" and cart["currency"] == "GBP"
    group = cart["groups"][0]
    assert group["page"] == {"id": 101, "slug": "bakery", "title": "Rose Ash Bakery"}
    assert group["checkout_url"] == "/cart/bakery/checkout/"
    assert group["lines"][0] == {
        "kind": "product",
        "title": "Sourdough loaf",
        "quantity": 2,
        "unit_price": "4.50",
        "line_total": "9.00",
        "currency": "GBP",
        "product_id": 1,
        "available": True,
    }
    response = await web.client.patch("/api/v1/cart/items/1", json={"quantity": 3})
    assert (await response.get_json())["total"] == "13.50"
    await web.client.post("/api/v1/cart/items", json={"product_id": 11})
    response = await web.client.delete("/api/v1/cart/items/1")
    cart = await response.get_json()
    assert cart["count"] == 1 and cart["groups"][0]["page"] is None
    assert cart["groups"][0]["checkout_url"] == "/cart/site/checkout/"
    assert cart["groups"][0]["checkout"] == {"site": True}
    response = await web.client.patch("/api/v1/cart/items/11", json={"quantity": 0})
    assert (await response.get_json())["count"] == 0


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({"product_id": 999}, 404, "product_not_found"),
        ({"product_id": "abc"}, 404, "product_not_found"),
        ({}, 404, "product_not_found"),
        ({"product_id": 1, "quantity": 0}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": -1}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": 1.5}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": "many"}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": True}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": 11}, 400, "quantity_too_large"),
        ({"product_id": 1, "quantity": 10**15}, 400, "quantity_too_large"),
        ({"product_id": 5, "quantity": 1}, 409, "product_unavailable"),
    ],
)
async def test_bad_input_has_stable_codes_and_changes_nothing(
    web: Web, body: dict[str, Any], status: int, code: str
) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 2, "quantity": 1})
    response = await web.client.post("/api/v1/cart/items", json=body)
    assert response.status_code == status
    error = (await response.get_json())["error"]
    assert error["code"] == code and error["message"]
    assert await web.quantities() == {2: 1}


async def test_patch_errors(web: Web) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 8, "quantity": 1})
    for path, body, status, code in [
        ("/api/v1/cart/items/3", {"quantity": 1}, 404, "product_not_found"),
        ("/api/v1/cart/items/8", {"quantity": -1}, 400, "invalid_quantity"),
        ("/api/v1/cart/items/8", {"quantity": 6}, 400, "quantity_too_large"),  # eggs: max 5
        ("/api/v1/cart/items/8", {}, 400, "bad_input"),
        ("/api/v1/cart/items/zz", {"quantity": 1}, 404, "product_not_found"),
    ]:
        response = await web.client.patch(path, json=body)
        assert response.status_code == status, path
        assert (await response.get_json())["error"]["code"] == code
    assert await web.quantities() == {8: 1}


async def test_more_than_100_lines_is_a_conflict(web: Web) -> None:
    from decimal import Decimal

    from rose_cart.ports import Product

    for i in range(1000, 1101):
        web.market.products[i] = Product(i, f"p{i}", f"P{i}", None, Decimal("1.00"), "GBP", 3)
    for i in range(1000, 1100):
        assert (
            await web.client.post("/api/v1/cart/items", json={"product_id": i})
        ).status_code == 201
    response = await web.client.post("/api/v1/cart/items", json={"product_id": 1100})
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "too_many_lines"
    assert len(await web.quantities()) == 100


async def test_body_must_be_json_and_same_site(web: Web) -> None:
    response = await web.client.post("/api/v1/cart/items", form={"product_id": "1"})
    assert response.status_code == 415
    assert (await response.get_json())["error"]["code"] == "json_required"
    response = await web.client.post(
        "/api/v1/cart/items", json={"product_id": 1}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "cross_site_request"
    response = await web.client.post(
        "/api/v1/cart/items", data="[1,2", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_json"
    assert await web.quantities() == {}


async def test_openapi_document_lists_every_api_route(web: Web) -> None:
    doc = await (await web.client.get("/api/v1/openapi.json")).get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in web.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = rule.rule.replace("<", "{").replace(">", "}")
            for method in rule.methods or ():
                if method not in {"HEAD", "OPTIONS"}:
                    served.add((path, method))
    assert served == documented
