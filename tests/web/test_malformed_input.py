"""Whatever a client sends, a malformed request is told so (400, or the 404 an unknown thing
gets), with the usual error body; never a 500."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rose_cart.domain.signing import sign
from tests.web.conftest import TOKEN, Web
from tests.web.test_internal import SECRET, signed

JSON = {"Content-Type": "application/json"}

UNREADABLE = [
    pytest.param(b'{"product_id": "\xff"}', id="invalid-utf8"),
    pytest.param(b"\xef\xbb\xbf{}", id="byte-order-mark"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="deeply-nested-array"),
    pytest.param(b'{"a":' * 3000 + b"1" + b"}" * 3000, id="deeply-nested-object"),
    pytest.param(b'{"product_id": 1, "quantity": NaN}', id="nan"),
    pytest.param(b'{"product_id": 1, "quantity": Infinity}', id="infinity"),
    pytest.param(b'{"product_id": 1, "quantity": ' + b"9" * 5000 + b"}", id="huge-number"),
    pytest.param(b'{"page_slug": "\\ud800"}', id="lone-surrogate"),
]


async def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = await response.get_json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("body", UNREADABLE)
@pytest.mark.parametrize("path", ["/api/v1/cart/items", "/api/v1/checkout"])
async def test_api_refuses_an_unreadable_body(web: Web, path: str, body: bytes) -> None:
    response = await web.client.post(path, data=body, headers=JSON)
    assert response.status_code == 400
    assert (await error_of(response))["code"] == "invalid_json"
    assert await web.quantities() == {}


@pytest.mark.parametrize("body", UNREADABLE)
async def test_dev_login_refuses_an_unreadable_body(web: Web, body: bytes) -> None:
    response = await web.client.post("/auth/dev-login", data=body, headers=JSON)
    assert response.status_code == 400
    assert (await error_of(response))["code"] == "invalid_json"


@pytest.mark.parametrize("body", [b"[1]", b'"alice"', b"3", b"null", b'[{"username": "a"}]'])
async def test_dev_login_needs_a_json_object(web: Web, body: bytes) -> None:
    response = await web.client.post("/auth/dev-login", data=body, headers=JSON)
    assert response.status_code == 400
    assert (await error_of(response))["code"] == "invalid_json"
    assert (await web.cart())["user_id"] is None


async def test_a_csrf_token_that_is_not_ascii_is_refused(web: Web) -> None:
    async with web.client.session_transaction() as session:
        session["csrf"] = TOKEN
    for sent in ["é", "tést-csrf-token", TOKEN + "\u2028"]:
        response = await web.client.post("/cart/add/", form={"csrf_token": sent, "product_id": "1"})
        assert response.status_code == 400
        assert b"csrf_failed" in await response.get_data()
    async with web.client.session_transaction() as session:
        session["csrf"] = "é-in-the-session"
    response = await web.client.post("/cart/add/", form={"csrf_token": "x", "product_id": "1"})
    assert response.status_code == 400
    assert await web.quantities() == {}


async def test_an_internal_signature_that_is_not_ascii_is_refused(web: Web) -> None:
    path = "/internal/cart/summary?user_id=1"
    now = str(int(time.time()))
    for signature in ["é", "é" * 64, sign(SECRET, "GET", path, int(now), b"")[:-1] + "é"]:
        response = await web.app.test_client().get(
            path, headers={"X-Rose-Timestamp": now, "X-Rose-Signature": signature}
        )
        assert response.status_code == 401
        assert (await error_of(response))["code"] == "bad_signature"
    for timestamp in ["١٧٠٠٠٠٠٠٠٠", "9" * 5000, "-", "+1"]:
        response = await web.app.test_client().get(
            path, headers={"X-Rose-Timestamp": timestamp, "X-Rose-Signature": "00"}
        )
        assert response.status_code == 401


@pytest.mark.parametrize("body", UNREADABLE)
async def test_a_signed_internal_action_refuses_an_unreadable_body(web: Web, body: bytes) -> None:
    path = "/internal/actions/cart-changed"
    response = await web.app.test_client().post(
        path, data=body, headers={**JSON, **signed("POST", path, body)}
    )
    assert response.status_code == 400
    assert (await error_of(response))["code"] == "invalid_json"


async def _order(web: Web) -> tuple[int, str]:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    response = await web.client.post("/api/v1/checkout", json={})
    order_id = int((await response.get_json())["order_id"])
    async with web.client.session_transaction() as session:
        sid = session["sid"]
    from rose_cart.domain.identity import CartIdentity

    order = await web.app.extensions["rose_cart"].orders.owned(
        CartIdentity(session_id=sid), order_id
    )
    return order_id, str(order.webhook_token)


async def test_a_webhook_token_that_is_not_ascii_is_an_unknown_order(web: Web) -> None:
    order_id, _ = await _order(web)
    sumup = web.app.test_client()
    known = await sumup.post(f"/checkout/webhook/{order_id}/%C3%A9t%C3%A9/", json={})
    unknown = await sumup.post(f"/checkout/webhook/{order_id + 1}/%C3%A9t%C3%A9/", json={})
    assert known.status_code == unknown.status_code == 404


@pytest.mark.parametrize("body", UNREADABLE)
async def test_a_webhook_with_an_unreadable_body_is_refused(web: Web, body: bytes) -> None:
    order_id, token = await _order(web)
    response = await web.app.test_client().post(
        f"/checkout/webhook/{order_id}/{token}/", data=body, headers=JSON
    )
    assert response.status_code == 400
    assert (await error_of(response))["code"] == "invalid_json"
