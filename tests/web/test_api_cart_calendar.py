"""Bookings and tickets through the JSON API: the Cart shape, changes, errors, checkout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from rose_cart.domain.identity import CartIdentity
from tests.fakes import FakeCalendar
from tests.web.conftest import Web, make_web


@pytest.fixture
def events() -> FakeCalendar:
    return FakeCalendar()


@pytest.fixture
async def web(database_url: str, events: FakeCalendar) -> AsyncIterator[Web]:
    w = make_web(database_url, calendar=events)
    async with w.app.app_context():
        yield w
    await w.app.extensions["rose_cart"].aclose()


async def alice_with_tickets(web: Web, events: FakeCalendar) -> int:
    """Alice has a loaf and a bread class at the bakery, and two adult and one child ticket
    for the chapel's harvest supper (10 adult places in all)."""
    uid = await web.login("alice")
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 1})
    events.book(CartIdentity(user_id=uid), 40, "Bread-making class", "20.00", page_id=101)
    events.add_ticket_type(3, 50, "Harvest supper", "Adult", "12.00", page_id=103, capacity=10)
    events.add_ticket_type(4, 50, "Harvest supper", "Child", "5.00", page_id=103)
    events.hold_tickets(uid, 3, 2)
    events.hold_tickets(uid, 4, 1)
    await web.cart_changed(user_id=uid)
    return uid


def lines(cart: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [line for g in cart["groups"] for line in g["lines"] if line["kind"] == kind]


async def test_the_cart_json_carries_bookings_and_tickets(web: Web, events: FakeCalendar) -> None:
    await alice_with_tickets(web, events)
    cart = await web.cart()
    assert (cart["count"], cart["total"]) == (5, "53.50")
    bakery, chapel = cart["groups"]
    assert (bakery["page"]["slug"], bakery["count"], bakery["total"]) == ("bakery", 2, "24.50")
    assert [line["kind"] for line in bakery["lines"]] == ["product", "booking"]
    assert bakery["lines"][1] == {
        "kind": "booking",
        "title": "Bread-making class",
        "quantity": 1,
        "unit_price": "20.00",
        "line_total": "20.00",
        "currency": "GBP",
        "entry_id": 40,
        "start_at": "2026-12-05T18:00:00+00:00",
    }
    assert (chapel["page"]["slug"], chapel["count"], chapel["total"]) == ("events", 3, "29.00")
    assert chapel["checkout_url"] == "/cart/events/checkout/"
    assert chapel["lines"] == [
        {
            "kind": "ticket",
            "title": "Harvest supper — Adult",
            "quantity": 2,
            "unit_price": "12.00",
            "line_total": "24.00",
            "currency": "GBP",
            "entry_id": 50,
            "ticket_type_id": 3,
        },
        {
            "kind": "ticket",
            "title": "Harvest supper — Child",
            "quantity": 1,
            "unit_price": "5.00",
            "line_total": "5.00",
            "currency": "GBP",
            "entry_id": 50,
            "ticket_type_id": 4,
        },
    ]
    summary = await (await web.client.get("/internal/cart/summary")).get_json()
    assert (summary["count"], summary["calendar_count"], summary["ticket_count"]) == (5, 1, 3)


async def test_remove_a_booking_and_change_tickets(web: Web, events: FakeCalendar) -> None:
    await alice_with_tickets(web, events)
    response = await web.client.delete("/api/v1/cart/bookings/40")
    assert response.status_code == 200
    cart = await response.get_json()
    assert lines(cart, "booking") == [] and cart["count"] == 4

    response = await web.client.patch("/api/v1/cart/tickets/3", json={"quantity": 5})
    assert response.status_code == 200
    cart = await response.get_json()
    assert [(t["ticket_type_id"], t["quantity"]) for t in lines(cart, "ticket")] == [(3, 5), (4, 1)]
    assert cart["total"] == "69.50"  # 4.50 + 5 x 12 + 5
    cart = await (await web.client.patch("/api/v1/cart/tickets/4", json={"quantity": 0})).get_json()
    assert [t["ticket_type_id"] for t in lines(cart, "ticket")] == [3]
    cart = await (await web.client.delete("/api/v1/cart/tickets/3")).get_json()
    assert lines(cart, "ticket") == [] and cart["count"] == 1
    summary = await (await web.client.get("/internal/cart/summary")).get_json()
    assert (summary["count"], summary["ticket_count"]) == (1, 0)


@pytest.mark.parametrize(
    "method,path,body,status,code",
    [
        ("delete", "/api/v1/cart/bookings/41", None, 404, "entry_not_found"),
        ("delete", "/api/v1/cart/bookings/x", None, 404, "entry_not_found"),
        ("patch", "/api/v1/cart/tickets/9", {"quantity": 1}, 404, "ticket_type_not_found"),
        ("delete", "/api/v1/cart/tickets/9", None, 404, "ticket_type_not_found"),
        ("patch", "/api/v1/cart/tickets/3", {"quantity": -1}, 400, "invalid_quantity"),
        ("patch", "/api/v1/cart/tickets/3", {"quantity": "two"}, 400, "invalid_quantity"),
        ("patch", "/api/v1/cart/tickets/3", {"quantity": 2.5}, 400, "invalid_quantity"),
        ("patch", "/api/v1/cart/tickets/3", {}, 400, "invalid_request"),
        ("patch", "/api/v1/cart/tickets/3", {"quantity": 100}, 409, "quantity_too_large"),
        ("patch", "/api/v1/cart/tickets/3", {"quantity": 11}, 409, "sold_out"),
    ],
)
async def test_errors_have_stable_codes_and_change_nothing(
    web: Web,
    events: FakeCalendar,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    await alice_with_tickets(web, events)
    before = await web.cart()
    send = getattr(web.client, method)
    response = await (send(path, json=body) if body is not None else send(path))
    assert response.status_code == status
    error = (await response.get_json())["error"]
    assert error["code"] == code and error["message"]
    if code == "sold_out":
        assert error["message"] == "Only 10 left of the Adult tickets for Harvest supper."
        assert (error["entry_id"], error["ticket_type_id"], error["left"]) == (50, 3, 10)
    assert await web.cart() == before


async def test_events_service_down_is_503_and_the_cart_unchanged(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_tickets(web, events)
    before = await web.cart()
    events.down = True
    for response in [
        await web.client.delete("/api/v1/cart/bookings/40"),
        await web.client.patch("/api/v1/cart/tickets/3", json={"quantity": 1}),
        await web.client.delete("/api/v1/cart/tickets/4"),
    ]:
        assert response.status_code == 503
        assert (await response.get_json())["error"]["code"] == "sibling_unavailable"
    events.down = False
    assert await web.cart() == before


async def test_an_anonymous_visitor_has_no_tickets_but_can_remove_a_booking(
    web: Web, events: FakeCalendar
) -> None:
    await web.client.post("/api/v1/cart/items", json={"product_id": 1})
    async with web.client.session_transaction() as session:
        sid = str(session["sid"])
    events.book(CartIdentity(session_id=sid), 40, "Bread-making class", "20.00")
    response = await web.client.patch("/api/v1/cart/tickets/3", json={"quantity": 1})
    assert (await response.get_json())["error"]["code"] == "ticket_type_not_found"
    cart = await (await web.client.delete("/api/v1/cart/bookings/40")).get_json()
    assert cart["count"] == 1 and lines(cart, "booking") == []


async def test_checkout_includes_them_and_a_sold_out_ticket_is_409_with_the_cart_intact(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_tickets(web, events)
    response = await web.client.post("/api/v1/checkout", json={})  # bakery and chapel
    error = (await response.get_json())["error"]
    assert error["code"] == "multiple_pages"
    assert [p["slug"] for p in error["pages"]] == ["bakery", "events"]
    events.ticket_types[3].sold_elsewhere = 9  # one adult place left; Alice holds two
    before = await web.cart()
    response = await web.client.post("/api/v1/checkout", json={"page_slug": "events"})
    assert response.status_code == 409
    error = (await response.get_json())["error"]
    assert error["code"] == "sold_out"
    assert error["message"].startswith(
        "Only 1 left of the Adult tickets for Harvest supper; you asked for 2."
    )
    assert (error["entry_id"], error["left"]) == (50, 1)
    assert web.payments.create_calls == 0 and await web.cart() == before

    # Down to the one left, the chapel's tickets check out at their price.
    await web.client.patch("/api/v1/cart/tickets/3", json={"quantity": 1})
    response = await web.client.post("/api/v1/checkout", json={"page_slug": "events"})
    assert response.status_code == 201
    result = await response.get_json()
    assert result["total"] == "17.00"
    order = await (await web.client.get(f"/api/v1/orders/{result['order_id']}")).get_json()
    assert order["items"] == [] and order["bookings"] == []
    assert sorted((t["entry_id"], t["ticket_type"], t["state"]) for t in order["tickets"]) == [
        (50, "Adult", "reserved"),
        (50, "Child", "reserved"),
    ]
    # The bakery's loaf and booking are still in the cart, as their own page.
    cart = await web.cart()
    assert [g["page"]["slug"] for g in cart["groups"]] == ["bakery"] and cart["count"] == 2
    response = await web.client.post("/api/v1/checkout", json={})  # the whole cart: one page
    assert response.status_code == 201 and (await response.get_json())["total"] == "24.50"


async def test_the_openapi_document_describes_the_new_routes(web: Web) -> None:
    doc = await (await web.client.get("/api/v1/openapi.json")).get_json()
    tickets = doc["paths"]["/api/v1/cart/tickets/{ticket_type_id}"]
    assert set(tickets) == {"patch", "delete"}
    assert {"200", "400", "404", "409", "503"} <= set(tickets["patch"]["responses"])
    bookings = doc["paths"]["/api/v1/cart/bookings/{entry_id}"]
    assert set(bookings) == {"delete"} and {"200", "404", "503"} <= set(
        bookings["delete"]["responses"]
    )
