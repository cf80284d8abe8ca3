from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from rose_cart.app import create_app
from rose_cart.bootstrap import Overrides
from rose_cart.config import Settings
from rose_cart.domain.signing import sign
from rose_cart.ports import CalendarService
from rose_cart.standalone.siblings import (
    EmptyCalendar,
    ReferenceBlog,
    ReferenceMarket,
    ReferenceSubscriber,
)
from tests.fakes import FakeClock, FakePaymentProvider

TOKEN = "test-csrf-token"


@dataclass
class Web:
    app: Quart
    client: TestClientProtocol
    market: ReferenceMarket
    clock: FakeClock
    payments: FakePaymentProvider

    async def login(self, username: str = "alice") -> int:
        response = await self.client.post("/auth/dev-login", json={"username": username})
        assert response.status_code == 200
        data: dict[str, Any] = await response.get_json()
        return int(data["user_id"])

    async def form(self, path: str, **fields: Any) -> Any:
        """Post a form the way a browser does, with the visitor's CSRF token."""
        async with self.client.session_transaction() as session:
            session["csrf"] = TOKEN
        return await self.client.post(path, form={"csrf_token": TOKEN, **fields})

    async def cart_changed(self, **who: Any) -> None:
        """What the events service does once it has changed a visitor's pending bookings or
        tickets itself: the signed ``cart-changed`` call, with ``user_id`` or ``session_id``."""
        path, body = "/internal/actions/cart-changed", json.dumps(who).encode()
        settings: Settings = self.app.config["ROSE_SETTINGS"]
        ts = int(time.time())
        signature = sign(settings.internal_secret, "POST", path, ts, body)
        response = await self.app.test_client().post(
            path,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Rose-Timestamp": str(ts),
                "X-Rose-Signature": signature,
            },
        )
        assert response.status_code == 200

    async def cart(self) -> dict[str, Any]:
        response = await self.client.get("/api/v1/cart")
        data: dict[str, Any] = await response.get_json()
        return data

    async def quantities(self) -> dict[int, int]:
        cart = await self.cart()
        return {
            line["product_id"]: line["quantity"]
            for g in cart["groups"]
            for line in g["lines"]
            if line["kind"] == "product"
        }


def make_web(database_url: str, calendar: CalendarService | None = None, **settings: Any) -> Web:
    market, clock, payments = ReferenceMarket(), FakeClock(), FakePaymentProvider()
    if calendar is None and settings.get("mode", "standalone") != "standalone":
        calendar = EmptyCalendar()  # split mode mounts no events sibling
    app = create_app(
        Settings(
            database_url=database_url, migrate_on_start=False, run_reconciler=False, **settings
        ),
        Overrides(
            market=market,
            blog=ReferenceBlog(),
            # None: the standalone events sibling, on the same database.
            calendar=calendar,
            clock=clock,
            payments=payments,
            subscriber=ReferenceSubscriber(),
        ),
    )
    return Web(app, app.test_client(), market, clock, payments)


@pytest.fixture
async def web(database_url: str) -> AsyncIterator[Web]:
    w = make_web(database_url)
    async with w.app.app_context():
        yield w
    await w.app.extensions["rose_cart"].aclose()
