"""An admin refunds a paid order end to end: the whole app served over real HTTP (uvicorn on
127.0.0.1, its own thread and event loop) with its built-in SumUp sandbox, the official SDK
making every SumUp call, the payer paying on the sandbox's hosted page and the sandbox
sending its webhooks back over the network."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from sumup import AsyncSumup
from sumup.errors import NotFoundError

from rose_cart.app import DEMO_BAKERY_ACCOUNT, create_app
from rose_cart.config import SANDBOX_API_KEY, Settings
from rose_cart.standalone.sumup_sandbox import SandboxState, SandboxTransaction

BAKERY_KEY = str(DEMO_BAKERY_ACCOUNT["api_key"])
BAKERY_MERCHANT = str(DEMO_BAKERY_ACCOUNT["merchant_code"])


@dataclass
class Running:
    url: str  # http://127.0.0.1:<port>
    sandbox: SandboxState

    @property
    def sumup_url(self) -> str:
        return f"{self.url}/sandbox/sumup"


@pytest.fixture
def running(database_url: str) -> Iterator[Running]:
    """The standalone app (demo bakery with its own sandbox account; ``admin`` is an admin)
    serving on a free port, its SumUp provider pointed at its own sandbox."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        migrate_on_start=False,
        run_reconciler=False,
        admin_users="admin",
    )
    app = create_app(settings)
    sandbox = app.extensions["rose_cart"].extras["sandbox"]
    assert isinstance(sandbox, SandboxState)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    # Server.run makes its own event loop in this thread; signals stay with the main thread.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", sandbox)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
async def payer(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.url, timeout=15.0) as client:
        login = await client.post("/auth/dev-login", json={"username": "rose-payer"})
        assert login.status_code == 200
        yield client


@pytest.fixture
async def admin(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.url, timeout=15.0) as client:
        login = await client.post("/auth/dev-login", json={"username": "admin"})
        assert login.status_code == 200
        yield client


async def paid_bakery_order(running: Running, payer: httpx.AsyncClient) -> tuple[int, str]:
    """Two sourdough loaves (£9.00) checked out and paid on the sandbox's hosted page;
    the order id and its SumUp checkout id."""
    added = await payer.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    assert added.status_code == 201
    checkout = await payer.post(
        "/api/v1/checkout", json={"page_slug": "bakery"}, headers={"Idempotency-Key": "refund-1"}
    )
    assert checkout.status_code == 201, checkout.text
    created: dict[str, Any] = checkout.json()
    assert created["total"] == "9.00"
    payment_url = str(created["payment_url"])
    assert payment_url.startswith(f"{running.sumup_url}/pay/")
    async with httpx.AsyncClient(timeout=15.0) as card_holder:
        page = await card_holder.get(payment_url)
        assert page.status_code == 200 and "9.00" in page.text
        paid = await card_holder.post(payment_url, data={"outcome": "paid"})
    order_id = int(created["order_id"])
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{running.url}/checkout/return/{order_id}/"
    confirmed = await payer.post(f"/api/v1/orders/{order_id}/check", json={})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "paid"
    return order_id, payment_url.rsplit("/", 1)[-1]


async def sumup_transaction(running: Running, checkout_id: str) -> Any:
    """The checkout's one transaction, as SumUp shows it to the bakery's own account."""
    async with AsyncSumup(api_key=BAKERY_KEY, base_url=running.sumup_url, timeout=5.0) as sdk:
        checkout = await sdk.checkouts.get(checkout_id)
    assert checkout.status == "PAID" and checkout.merchant_code == BAKERY_MERCHANT
    [transaction] = checkout.transactions
    return transaction


def stored_transaction(running: Running, transaction_id: str) -> SandboxTransaction:
    found = running.sandbox.find_transaction(BAKERY_MERCHANT, transaction_id)
    assert found is not None
    return found[1]


async def test_admin_refunds_part_then_the_rest_through_sumup(
    running: Running, payer: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    order_id, checkout_id = await paid_bakery_order(running, payer)
    paid = await sumup_transaction(running, checkout_id)
    assert paid.status == "SUCCESSFUL"
    # The payment went to the bakery's own account: the site's key cannot even see it.
    async with AsyncSumup(api_key=SANDBOX_API_KEY, base_url=running.sumup_url, timeout=5.0) as site:
        with pytest.raises(NotFoundError):
            await site.checkouts.get(checkout_id)

    # Part of it, through the admin's form.
    page = await admin.get(f"/admin/orders/{order_id}/")
    assert page.status_code == 200 and 'data-order-status="paid"' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    form = await admin.post(
        f"/admin/orders/{order_id}/refund/", data={"csrf_token": token[1], "amount": "4.00"}
    )
    assert form.status_code == 303, form.text
    refunded = await sumup_transaction(running, checkout_id)
    assert refunded.status == "REFUNDED" and refunded.id == paid.id
    assert stored_transaction(running, paid.id).refunded == Decimal("4.00")
    order = (await admin.get(f"/api/v1/admin/orders/{order_id}")).json()
    assert (order["status"], order["refunded"]) == ("partially_refunded", "4.00")
    assert [(r["amount"], r["status"]) for r in order["refunds"]] == [("4.00", "done")]
    mine = (await payer.get(f"/api/v1/orders/{order_id}")).json()
    assert (mine["status"], mine["refunded"]) == ("partially_refunded", "4.00")

    # The rest, through the JSON API.
    rest = await admin.post(f"/api/v1/admin/orders/{order_id}/refund", json={})
    assert rest.status_code == 200, rest.text
    order = rest.json()
    assert (order["status"], order["refunded"]) == ("refunded", "9.00")
    assert [(r["amount"], r["status"]) for r in order["refunds"]] == [
        ("4.00", "done"),
        ("5.00", "done"),
    ]
    assert [r["type"] for r in order["outbox"]].count("rose:OrderRefunded") == 2
    assert stored_transaction(running, paid.id).refunded == Decimal("9.00")

    # Nothing is left: SumUp is not asked again, and the payer sees it all went back.
    for body in ({}, {"amount": "0.01"}):
        again = await admin.post(f"/api/v1/admin/orders/{order_id}/refund", json=body)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "refund_exceeds_payment"
    assert stored_transaction(running, paid.id).refunded == Decimal("9.00")
    mine = (await payer.get(f"/api/v1/orders/{order_id}")).json()
    assert (mine["status"], mine["refunded"]) == ("refunded", "9.00")
    own_page = await payer.get(f"/orders/{order_id}/")
    assert 'data-refunded="9.00"' in own_page.text and "£9.00 of £9.00" in own_page.text
