"""An Idempotency-Key names one checkout: the same request gets the same order, a key of
the wrong shape or used for another checkout is refused, never quietly ignored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Web

KEY = "client-key-0001"


async def checkout(web: Web, key: str | None = KEY, **body: Any) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await web.client.post("/api/v1/checkout", json=body, headers=headers)


async def orders(web: Web) -> list[int]:
    return [o["id"] for o in await (await web.client.get("/api/v1/orders")).get_json()]


@pytest.mark.parametrize(
    "key",
    ["", "short12", "x" * 129, "has space-1", "naïve-key-1", "tab\tkey-123", "key/with/slash"],
)
async def test_a_key_of_the_wrong_shape_is_refused(web: Web, key: str) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    response = await checkout(web, key)
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert error["field"] == "Idempotency-Key"
    assert await orders(web) == []


@pytest.mark.parametrize("key", ["k" * 8, "K" * 128, "order:2024-01-01_a.b"])
async def test_keys_of_8_to_128_characters_are_used(web: Web, key: str) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    first, again = await checkout(web, key), await checkout(web, key)
    assert first.status_code == again.status_code == 201
    assert (await first.get_json())["order_id"] == (await again.get_json())["order_id"]


async def test_a_form_with_a_key_of_the_wrong_shape_is_refused(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    response = await web.form("/cart/checkout/", idempotency_key="short")
    assert response.status_code == 400
    assert b"invalid_idempotency_key" in await response.get_data()
    assert await orders(web) == []


async def test_the_same_request_again_is_the_same_order(web: Web) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    first = await (await checkout(web, page_slug="bakery")).get_json()
    for body in [{"page_slug": "bakery"}, {}]:  # the whole cart is the bakery's lines
        again = await checkout(web, **body)
        assert again.status_code == 201
        assert (await again.get_json())["order_id"] == first["order_id"]
    assert await orders(web) == [first["order_id"]]


async def test_the_key_again_with_a_changed_cart_is_refused(web: Web) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    first = await (await checkout(web)).get_json()
    await web.client.patch("/api/v1/cart/items/1", json={"quantity": 3})
    response = await checkout(web)
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "idempotency_key_reused"
    await web.client.post("/api/v1/cart/items", json={"product_id": 2})  # another bakery line
    await web.client.patch("/api/v1/cart/items/1", json={"quantity": 2})
    assert (await checkout(web)).status_code == 409
    await web.client.delete("/api/v1/cart/items/2")
    again = await checkout(web)  # back as it was: the same request
    assert (await again.get_json())["order_id"] == first["order_id"]
    assert await orders(web) == [first["order_id"]]
    fresh = await checkout(web, "client-key-0002")
    assert fresh.status_code == 201


async def test_the_key_again_for_another_page_is_refused(web: Web) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    await web.client.post("/api/v1/cart/items", json={"product_id": 6})
    first = await checkout(web, page_slug="bakery")
    assert first.status_code == 201
    response = await checkout(web, page_slug="garden")
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "idempotency_key_reused"
    assert len(await orders(web)) == 1


async def test_the_key_again_after_paying_gives_the_paid_order_back(web: Web) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    first = await (await checkout(web)).get_json()
    checkout_id = first["payment_url"].rstrip("/").rsplit("/", 1)[-1]
    web.payments.settle(checkout_id, "PAID")
    await web.client.post(f"/api/v1/orders/{first['order_id']}/check")
    assert (await web.cart())["count"] == 0  # paying took the line out of the cart
    again = await checkout(web)
    assert again.status_code == 201
    data = await again.get_json()
    assert (data["order_id"], data["status"]) == (first["order_id"], "paid")
