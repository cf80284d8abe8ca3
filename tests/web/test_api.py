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
        ({"product_id": "abc"}, 400, "invalid_request"),
        ({"product_id": "1"}, 400, "invalid_request"),
        ({"product_id": 0}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"quantity": 1}, 400, "invalid_request"),
        ({"product_id": 1, "quantity": 0}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": -1}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": 1.5}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": "many"}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": True}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": 11}, 409, "quantity_too_large"),
        ({"product_id": 1, "quantity": 10**15}, 409, "quantity_too_large"),
        ({"product_id": 1, "quantity": 100}, 409, "quantity_too_large"),
        ({"product_id": 1, "quantity": "3"}, 400, "invalid_quantity"),
        ({"product_id": 1, "quantity": None}, 400, "invalid_quantity"),
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
        ("/api/v1/cart/items/8", {"quantity": 6}, 409, "quantity_too_large"),  # eggs: max 5
        ("/api/v1/cart/items/8", {}, 400, "invalid_request"),
        ("/api/v1/cart/items/8", {"quantity": "2"}, 400, "invalid_quantity"),
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
        if rule.rule.startswith("/api/v1") and rule.rule != "/api/v1/openapi.json":
            path = rule.rule.replace("<", "{").replace(">", "}")
            for method in rule.methods or ():
                if method not in {"HEAD", "OPTIONS"}:
                    served.add((path, method))
    assert served == documented


def _operation(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = doc["paths"][path][method]
    return operation


def _body_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    request = _operation(doc, path, method)["requestBody"]
    schema: dict[str, Any] = request["content"]["application/json"]["schema"]
    return schema


async def test_the_document_says_what_the_code_does(web: Web) -> None:
    doc = await (await web.client.get("/api/v1/openapi.json")).get_json()
    add = _body_schema(doc, "/api/v1/cart/items", "post")
    assert add["required"] == ["product_id"]
    assert add["properties"]["quantity"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 99,
        "default": 1,
        "title": "Quantity",
    }
    for path in ["/api/v1/cart/items/{product_id}", "/api/v1/cart/tickets/{ticket_type_id}"]:
        quantity = _body_schema(doc, path, "patch")["properties"]["quantity"]
        assert (quantity["type"], quantity["minimum"], quantity["maximum"]) == ("integer", 0, 99)
    assert _operation(doc, "/api/v1/cart/items", "post")["requestBody"]["required"] is True
    assert _operation(doc, "/api/v1/checkout", "post")["requestBody"]["required"] is False
    assert "requestBody" not in _operation(doc, "/api/v1/orders/{order_id}/check", "post")
    [key] = _operation(doc, "/api/v1/checkout", "post")["parameters"]
    assert key["name"] == "Idempotency-Key" and key["in"] == "header"
    assert key["schema"]["pattern"] == "^[A-Za-z0-9_.:-]{8,128}$"
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response["content"]["application/json"]["schema"]
                if int(status) >= 400:
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
                    assert response["description"], (path, method, status)
    assert "409" in _operation(doc, "/api/v1/checkout", "post")["responses"]
    assert (
        "idempotency_key_reused"
        in (_operation(doc, "/api/v1/checkout", "post")["responses"]["409"]["description"])
    )
    for path in [
        "/api/v1/cart/bookings/{entry_id}",
        "/api/v1/cart/tickets/{ticket_type_id}",
        "/api/v1/admin/orders",
        "/api/v1/admin/orders/{order_id}",
        "/api/v1/admin/orders/{order_id}/refund",
    ]:
        assert path in doc["paths"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 2}, "product_id"),
        ({"product_id": "1"}, "product_id"),
        ({"product_id": True}, "product_id"),
        ({"product_id": 1.5}, "product_id"),
        ({"product_id": [1]}, "product_id"),
    ],
)
async def test_a_missing_or_mistyped_field_is_named(
    web: Web, body: dict[str, Any], field: str
) -> None:
    response = await web.client.post("/api/v1/cart/items", json=body)
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "invalid_request" and error["field"] == field
    assert field in error["message"]


async def test_quantities_are_json_integers_not_strings(web: Web) -> None:
    # A string is not a number: refused, as the document says.
    for quantity in ["3", " 3", "+3", "3.0", "٣"]:
        response = await web.client.post(
            "/api/v1/cart/items", json={"product_id": 1, "quantity": quantity}
        )
        assert response.status_code == 400, quantity
        error = (await response.get_json())["error"]
        assert (error["code"], error["field"]) == ("invalid_quantity", "quantity")
    response = await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 3.0})
    assert response.status_code == 201  # 3.0 is the number 3 in JSON
    assert await web.quantities() == {1: 3}


async def test_a_post_that_takes_no_body_needs_none(web: Web) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    order_id = (await (await web.client.post("/api/v1/checkout")).get_json())["order_id"]
    for kwargs in [{}, {"headers": {"Content-Type": "text/plain"}}, {"json": {}}]:
        response = await web.client.post(f"/api/v1/orders/{order_id}/check", **kwargs)
        assert response.status_code == 200, kwargs
        assert (await response.get_json())["id"] == order_id
    unknown = await web.client.post("/api/v1/orders/999999/check")
    assert unknown.status_code == 404
    assert (await unknown.get_json())["error"]["code"] == "order_not_found"
    # A body that is not JSON is still refused.
    response = await web.client.post(
        f"/api/v1/orders/{order_id}/check", data="x=1", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_a_post_that_needs_a_body_says_so(web: Web) -> None:
    response = await web.client.post("/api/v1/cart/items")
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_request"


async def test_quart_schemas_own_validation_errors_have_the_usual_body(web: Web) -> None:
    from pydantic import BaseModel
    from quart_schema import validate_querystring

    class Query(BaseModel):
        count: int

    @validate_querystring(Query)
    async def probe(query_args: Query) -> str:
        return str(query_args.count)

    web.app.add_url_rule("/api/v1/probe", "probe", probe)
    response = await web.client.get("/api/v1/probe?count=many")
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "count")
    assert (await (await web.client.get("/api/v1/probe?count=3")).get_data()) == b"3"
