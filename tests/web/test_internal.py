from __future__ import annotations

import json
import time
from dataclasses import replace
from decimal import Decimal

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
    assert await response.get_json() == {"ok": True, "moved": 1, "merged": 0}
    summary_path = "/internal/cart/summary?user_id=4242"
    summary = await other.get(summary_path, headers=signed("GET", summary_path))
    assert (await summary.get_json())["count"] == 2
    # Something behind the cached summary changes (here: the market's price), and the
    # sibling that changed it says so: the next summary shows it.

    web.market.products[1] = replace(web.market.products[1], unit_price=Decimal("5.00"))
    await web.app.extensions["rose_cart"].catalog.cache.delete("product:1")
    stale = await other.get(summary_path, headers=signed("GET", summary_path))
    assert (await stale.get_json())["total"] == "9.00"  # still the cached summary
    changed = json.dumps({"user_id": 4242}).encode()
    path = "/internal/actions/cart-changed"
    response = await other.post(
        path,
        data=changed,
        headers={"Content-Type": "application/json", **signed("POST", path, changed)},
    )
    assert response.status_code == 200
    fresh = await other.get(summary_path, headers=signed("GET", summary_path))
    assert (await fresh.get_json())["total"] == "10.00"


async def test_page_config_ensure_and_read_never_shows_the_key(web: Web) -> None:
    other = web.app.test_client()
    path = "/internal/actions/page-config-ensure"
    body = json.dumps(
        {
            "page_id": 101,
            "merchant_code": "MBAKERY1",
            "api_key": "sup_sk_bakery",
            "checkout_prefix": "bakery",
        }
    ).encode()
    refused = await other.post(path, data=body, headers={"Content-Type": "application/json"})
    assert refused.status_code == 401
    response = await other.post(
        path, data=body, headers={"Content-Type": "application/json", **signed("POST", path, body)}
    )
    data = await response.get_json()
    assert data == {
        "page_id": 101,
        "merchant_code": "MBAKERY1",
        "checkout_prefix": "bakery",
        "has_api_key": True,
        "configured": True,
    }
    read_path = "/internal/data/page-config?page_id=101"
    read = await other.get(read_path, headers=signed("GET", read_path))
    assert await read.get_json() == data
    assert b"sup_sk_bakery" not in await read.get_data()
    account = await web.app.extensions["rose_cart"].page_configs.account_for(101)
    assert (account.credentials.merchant_code, account.credentials.api_key) == (
        "MBAKERY1",
        "sup_sk_bakery",
    )
    site = await web.app.extensions["rose_cart"].page_configs.account_for(102)
    assert site.source == "site" and site.credentials.merchant_code == "MSANDBOX"
    bad = json.dumps({"page_id": "x"}).encode()
    response = await other.post(
        path, data=bad, headers={"Content-Type": "application/json", **signed("POST", path, bad)}
    )
    assert response.status_code == 400


async def test_page_key_is_encrypted_at_rest(web: Web) -> None:
    services = web.app.extensions["rose_cart"]
    await services.page_configs.ensure(102, "MGARDEN1", "sup_sk_garden_secret", "garden")
    async with services.cart.uow() as tx:
        stored = await tx.page_configs.get(102)
    assert stored is not None and stored.api_key_encrypted
    assert "sup_sk_garden_secret" not in stored.api_key_encrypted
