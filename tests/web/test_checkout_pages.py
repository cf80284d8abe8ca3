from __future__ import annotations

import json
from typing import Any

import pytest

from rose_cart.domain.errors import PaymentProviderRejected, PaymentProviderUnavailable
from rose_cart.domain.identity import CartIdentity
from tests.web.conftest import Web


async def checkout(
    web: Web, path: str = "/cart/bakery/checkout/", key: str = "form-key-0001"
) -> Any:
    return await web.form(path, idempotency_key=key)


def checkout_id(location: str) -> str:
    return location.rsplit("/", 1)[-1]


async def test_checkout_redirects_to_sumup_then_return_page_shows_paid(web: Web) -> None:
    await web.login("alice")
    await web.form("/cart/add/", product_id="1", quantity="2")
    await web.form("/cart/add/", product_id="7", quantity="1")
    response = await checkout(web)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("https://pay.example/")
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    assert (order["status"], order["total"], order["page"]["slug"]) == ("pending", "9.00", "bakery")
    page = (await (await web.client.get(f"/checkout/return/{order['id']}/")).get_data()).decode()
    assert 'data-order-status="pending"' in page and "Pay now" in page
    web.payments.settle(checkout_id(location), "PAID")
    page = (await (await web.client.get(f"/checkout/return/{order['id']}/")).get_data()).decode()
    assert 'data-order-status="paid"' in page and "Thank you" in page and "£9.00" in page
    assert await web.quantities() == {7: 1}  # the garden's line was not part of this order
    listing = (await (await web.client.get("/orders/")).get_data()).decode()
    assert f'href="/orders/{order["id"]}/"' in listing and "paid" in listing


async def test_double_click_gives_one_order(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    first = await checkout(web, key="same-key-0001")
    second = await checkout(web, key="same-key-0001")
    assert first.headers["Location"] == second.headers["Location"]
    assert len(await (await web.client.get("/api/v1/orders")).get_json()) == 1
    assert len(web.payments.checkouts) == 1


@pytest.mark.parametrize(
    "setup,status,code",
    [
        ([], 409, "cart_empty"),
        ([("1", "1"), ("7", "1")], 409, "multiple_pages"),
    ],
)
async def test_whole_cart_checkout_refusals(
    web: Web, setup: list[tuple[str, str]], status: int, code: str
) -> None:
    for pid, qty in setup:
        await web.form("/cart/add/", product_id=pid, quantity=qty)
    response = await checkout(web, "/cart/checkout/")
    html = (await response.get_data()).decode()
    assert response.status_code == status and f'data-error-code="{code}"' in html
    if code == "multiple_pages":
        assert 'href="/cart/bakery/"' in html and 'href="/cart/garden/"' in html
    assert web.payments.create_calls == 0


@pytest.mark.parametrize(
    "error,status,text",
    [
        (PaymentProviderUnavailable(), 502, "not answering"),
        (PaymentProviderRejected(), 502, "refused this shop"),
    ],
)
async def test_sumup_failure_page_keeps_the_cart(
    web: Web, error: Exception, status: int, text: str
) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    web.payments.fail_create = error
    response = await checkout(web)
    html = (await response.get_data()).decode()
    assert response.status_code == status and text in html and "Your cart is safe" in html
    assert await web.quantities() == {1: 2}


async def test_api_checkout_and_orders(web: Web) -> None:
    await web.login("api-user")
    await web.client.post("/api/v1/cart/items", json={"product_id": 6, "quantity": 2})
    response = await web.client.post(
        "/api/v1/checkout",
        json={"page_slug": "garden"},
        headers={"Idempotency-Key": "api-key-0001"},
    )
    assert response.status_code == 201
    created: dict[str, Any] = await response.get_json()
    assert (created["status"], created["total"], created["currency"]) == ("pending", "30.00", "GBP")
    again = await web.client.post(
        "/api/v1/checkout",
        json={"page_slug": "garden"},
        headers={"Idempotency-Key": "api-key-0001"},
    )
    assert (await again.get_json())["order_id"] == created["order_id"]
    web.payments.settle(checkout_id(created["payment_url"]), "PAID")
    checked = await (
        await web.client.post(f"/api/v1/orders/{created['order_id']}/check", json={})
    ).get_json()
    assert checked["status"] == "paid" and checked["paid_at"]
    assert checked["items"] == [
        {
            "product_id": 6,
            "title": "Seasonal veg box",
            "quantity": 2,
            "unit_price": "15.00",
            "line_total": "30.00",
        }
    ]
    assert [p["status"] for p in checked["payments"]] == ["paid"]
    empty = await web.client.post("/api/v1/checkout", json={})
    assert empty.status_code == 409
    assert (await empty.get_json())["error"]["code"] == "cart_empty"


async def test_orders_are_private(web: Web) -> None:
    await web.login("owner")
    await web.form("/cart/add/", product_id="1")
    await checkout(web)
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    stranger = web.app.test_client()
    for path in [
        f"/orders/{order['id']}/",
        f"/api/v1/orders/{order['id']}",
        f"/checkout/return/{order['id']}/",
        "/orders/abc/",
        "/api/v1/orders/99999",
    ]:
        response = await stranger.get(path)
        assert response.status_code == 404, path
    assert await (await stranger.get("/api/v1/orders")).get_json() == []


async def test_failed_payment_then_pay_again(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    location = (await checkout(web)).headers["Location"]
    web.payments.settle(checkout_id(location), "FAILED")
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    page = (await (await web.client.get(f"/checkout/return/{order['id']}/")).get_data()).decode()
    assert 'data-order-status="failed"' in page and f'action="/orders/{order["id"]}/pay/"' in page
    again = await web.form(f"/orders/{order['id']}/pay/")
    assert again.status_code == 303 and again.headers["Location"] != location
    check = await web.form(f"/orders/{order['id']}/check/")
    assert check.headers["Location"] == f"/orders/{order['id']}/"
    detail = (await (await web.client.get(f"/orders/{order['id']}/")).get_data()).decode()
    assert "Payments (2)" in detail
    assert await web.quantities() == {1: 1}


async def test_webhook_answers_fast_and_empty(web: Web) -> None:
    await web.form("/cart/add/", product_id="1")
    location = (await checkout(web)).headers["Location"]
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    stored = await web.app.extensions["rose_cart"].orders.owned(
        CartIdentity(session_id=await _sid(web)), order["id"]
    )
    web.payments.settle(checkout_id(location), "PAID")
    body = json.dumps({"event_type": "CHECKOUT_STATUS_CHANGED", "id": checkout_id(location)})
    wrong = await web.app.test_client().post(f"/checkout/webhook/{order['id']}/nope/", data=body)
    assert wrong.status_code == 404
    response = await web.app.test_client().post(
        f"/checkout/webhook/{order['id']}/{stored.webhook_token}/", data=body
    )
    assert response.status_code == 204 and await response.get_data() == b""
    assert (await (await web.client.get(f"/api/v1/orders/{order['id']}")).get_json())[
        "status"
    ] == "paid"


async def _sid(web: Web) -> str:
    async with web.client.session_transaction() as session:
        return str(session["sid"])
