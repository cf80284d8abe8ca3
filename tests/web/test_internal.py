from __future__ import annotations

import json
import time

from rose_cart.domain.signing import sign
from tests.web.conftest import Web

SECRET = "dev-only-secret-change-me"


def signed(
    method: str, path: str, body: bytes = b"", secret: str = SECRET, at: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if at is None else at
    return {"X-Rose-Timestamp": str(ts), "X-Rose-Signature": sign(secret, method, path, ts, body)}


async def test_summary_for_own_cookie(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    data = await (await web.client.get("/internal/cart/summary")).get_json()
    assert data == {
        "count": 2,
        "total": "9.00",
        "currency": "GBP",
        "product_count": 2,
        "product_total": "9.00",
        "calendar_count": 0,
        "calendar_total": "0.00",
        "ticket_count": 0,
        "ticket_total": "0.00",
    }


async def test_summary_for_named_user_needs_a_signature(web: Web) -> None:
    uid = await web.login("carol")
    await web.form("/cart/add/", product_id="6")
    path = f"/internal/cart/summary?user_id={uid}"
    other = web.app.test_client()
    unsigned = await other.get(path)
    assert unsigned.status_code == 401
    stale = await other.get(path, headers=signed("GET", path, at=int(time.time()) - 3600))
    assert stale.status_code == 401
    wrong = await other.get(path, headers=signed("GET", path, secret="nope"))
    assert wrong.status_code == 401
    ok = await other.get(path, headers=signed("GET", path))
    assert (await ok.get_json())["count"] == 1


async def test_fragments(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="3")
    html = (await (await web.client.get("/internal/fragments/cart-mini")).get_data()).decode()
    assert 'data-count="3"' in html and 'href="/cart/"' in html
    nav = await (await web.client.get("/internal/fragments/account-nav-item")).get_data()
    assert b'href="/orders/"' in nav


async def test_adopt_action_and_cart_changed(web: Web) -> None:
    await web.form("/cart/add/", product_id="1", quantity="2")
    async with web.client.session_transaction() as session:
        sid = session["sid"]
    body = json.dumps({"user_id": 4242, "session_id": sid}).encode()
    path = "/internal/actions/adopt-cart-for-user"
    other = web.app.test_client()
    refused = await other.post(path, data=body, headers={"Content-Type": "application/json"})
    assert refused.status_code == 401
    response = await other.post(
        path, data=body, headers={"Content-Type": "application/json", **signed("POST", path, body)}
    )
    assert response.status_code == 200
    summary_path = "/internal/cart/summary?user_id=4242"
    summary = await other.get(summary_path, headers=signed("GET", summary_path))
    assert (await summary.get_json())["count"] == 2
    changed = json.dumps({"user_id": 4242}).encode()
    path = "/internal/actions/cart-changed"
    response = await other.post(
        path,
        data=changed,
        headers={"Content-Type": "application/json", **signed("POST", path, changed)},
    )
    assert response.status_code == 200
