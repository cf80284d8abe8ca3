"""Logging in adopts the anonymous cart, orders and bookings, whatever else is going on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rose_cart.domain.errors import SiblingUnavailable
from rose_cart.standalone.siblings import EmptyCalendar
from tests.web.conftest import Web, make_web
from tests.web.test_internal import signed


class EventsService(EmptyCalendar):
    """The events service, which can be down when asked to adopt bookings."""

    def __init__(self) -> None:
        self.down = False
        self.adopted: list[tuple[int, str]] = []

    async def adopt_for_user(self, user_id: int, session_id: str) -> None:
        if self.down:
            raise SiblingUnavailable()
        self.adopted.append((user_id, session_id))


@pytest.fixture
def events() -> EventsService:
    return EventsService()


@pytest.fixture
async def web_with_events(database_url: str, events: EventsService) -> AsyncIterator[Web]:
    w = make_web(database_url, calendar=events)
    async with w.app.app_context():
        yield w
    await w.app.extensions["rose_cart"].aclose()


async def checkout(web: Web, key: str) -> int:
    response = await web.client.post("/api/v1/checkout", json={}, headers={"Idempotency-Key": key})
    assert response.status_code == 201
    data: dict[str, Any] = await response.get_json()
    return int(data["order_id"])


async def sid_of(web: Web) -> str:
    async with web.client.session_transaction() as session:
        return str(session["sid"])


async def test_an_idempotency_key_used_before_and_after_login_keeps_both_orders(
    web: Web,
) -> None:
    # An API client checks out as Alice, logs out, checks out anonymously with the same
    # key (a fresh cart), and logs in again.
    await web.login("alice")
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 1})
    mine = await checkout(web, "client-key-0001")
    await web.client.post("/auth/logout", json={})
    await web.client.post("/api/v1/cart/items", json={"product_id": 6, "quantity": 1})
    before_login = await checkout(web, "client-key-0001")
    assert before_login != mine
    await web.login("alice")
    response = await web.client.get("/api/v1/orders")
    assert response.status_code == 200
    assert sorted(o["id"] for o in await response.get_json()) == sorted([mine, before_login])
    # The key keeps meaning the order Alice made with it while logged in.
    assert await checkout(web, "client-key-0001") == mine
    assert (await web.client.get("/cart/")).status_code == 200
    assert (await web.client.get(f"/api/v1/orders/{before_login}")).status_code == 200


async def test_events_service_down_at_login_still_serves_the_page_and_adopts_later(
    web_with_events: Web, events: EventsService
) -> None:
    web = web_with_events
    await web.form("/cart/add/", product_id="1", quantity="3")
    await web.form("/cart/add/", product_id="8", quantity="2")
    sid = await sid_of(web)
    events.down = True
    uid = await web.login("walt")
    page = await web.client.get("/cart/")
    assert page.status_code == 200
    assert "kept the 5 items" in (await page.get_data()).decode()
    assert await web.quantities() == {1: 3, 8: 2}
    assert events.adopted == []
    # Back up a moment later: not asked again yet, at most once a minute.
    events.down = False
    web.clock.advance(seconds=30)
    assert (await web.client.get("/cart/")).status_code == 200
    assert events.adopted == []
    web.clock.advance(seconds=31)
    assert (await web.client.get("/api/v1/cart")).status_code == 200
    assert events.adopted == [(uid, sid)]
    assert (await web.client.get("/cart/")).status_code == 200
    assert events.adopted == [(uid, sid)]  # owed no more


async def test_events_service_still_down_is_asked_again_a_minute_later(
    web_with_events: Web, events: EventsService
) -> None:
    web = web_with_events
    await web.form("/cart/add/", product_id="1")
    sid = await sid_of(web)
    events.down = True
    uid = await web.login("wanda")
    assert (await web.client.get("/cart/")).status_code == 200
    web.clock.advance(seconds=61)
    assert (await web.client.get("/cart/")).status_code == 200  # asked, still down
    events.down = False
    web.clock.advance(seconds=30)
    assert (await web.client.get("/cart/")).status_code == 200
    assert events.adopted == []
    web.clock.advance(seconds=31)
    assert (await web.client.get("/cart/")).status_code == 200
    assert events.adopted == [(uid, sid)]


async def test_bookings_owed_to_one_user_are_not_given_to_the_next(
    web_with_events: Web, events: EventsService
) -> None:
    web = web_with_events
    await web.form("/cart/add/", product_id="1")
    events.down = True
    await web.login("xena")
    assert (await web.client.get("/cart/")).status_code == 200
    await web.client.post("/auth/logout", json={})
    events.down = False
    await web.login("yuri")
    web.clock.advance(seconds=61)
    assert (await web.client.get("/cart/")).status_code == 200
    assert events.adopted == []


async def test_adopt_action_is_done_for_the_cart_and_503_until_the_bookings_move(
    web_with_events: Web, events: EventsService
) -> None:
    web = web_with_events
    await web.form("/cart/add/", product_id="1", quantity="2")
    sid = await sid_of(web)
    body = json.dumps({"user_id": 4243, "session_id": sid}).encode()
    path = "/internal/actions/adopt-cart-for-user"
    headers = {"Content-Type": "application/json", **signed("POST", path, body)}
    other = web.app.test_client()
    events.down = True
    response = await other.post(path, data=body, headers=headers)
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "sibling_unavailable"
    summary_path = "/internal/cart/summary?user_id=4243"
    summary = await other.get(summary_path, headers=signed("GET", summary_path))
    assert (await summary.get_json())["count"] == 2  # the cart's part is done
    events.down = False
    response = await other.post(path, data=body, headers=headers)
    assert response.status_code == 200
    assert await response.get_json() == {"ok": True, "moved": 0, "merged": 0}
    assert events.adopted == [(4243, sid)]
