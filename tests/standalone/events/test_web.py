"""The events pages and JSON API through the app, with the real events sibling on the same
database as the cart (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from rose_cart.standalone.events.calendar import ReferenceCalendar
from tests.standalone.events.conftest import Calendar, make_calendar
from tests.web.conftest import Web, make_web

REFUND_NOTE = "If the event sells out before payment, you will be refunded."


@dataclass
class Site:
    web: Web
    cal: Calendar

    async def page(self, path: str) -> str:
        response = await self.web.client.get(path)
        assert response.status_code == 200, path
        return (await response.get_data()).decode()

    async def follow(self, response: Any) -> str:
        assert response.status_code == 303
        return await self.page(response.headers["Location"])

    async def my_tickets(self) -> list[dict[str, Any]]:
        response = await self.web.client.get("/events/api/tickets")
        assert response.status_code == 200
        data: list[dict[str, Any]] = await response.get_json()
        return data

    async def entries(self) -> dict[int, dict[str, Any]]:
        response = await self.web.client.get("/events/api/entries")
        assert response.status_code == 200
        return {e["id"]: e for e in await response.get_json()}

    async def available(self, entry_id: int, ticket_type_id: int) -> int:
        entry = (await self.entries())[entry_id]
        return int(next(t["available"] for t in entry["ticket_types"] if t["id"] == ticket_type_id))


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    web = make_web(database_url)
    events = web.app.extensions["rose_cart"].extras["events"]
    assert isinstance(events, ReferenceCalendar)
    async with web.app.app_context():
        yield Site(web, await make_calendar(events, web.clock))
    await web.app.extensions["rose_cart"].aclose()


def badge(html: str) -> str:
    marker = 'class="badge'
    start = html.index('data-count="', html.index(marker)) + len('data-count="')
    return html[start : html.index('"', start)]


# --------------------------------------------------------------------------- tickets


async def test_a_visitor_who_is_not_logged_in_is_asked_to_sign_in_to_buy_tickets(
    site: Site,
) -> None:
    cal, web = site.cal, site.web
    html = await site.page(f"/events/{cal.supper}/")
    assert "Sign in to buy tickets" in html
    assert f'action="/events/{cal.supper}/tickets/"' not in html
    assert "Cook&#39;s table" in html and "5 left" in html  # what is on offer is shown

    response = await web.client.post(
        f"/events/api/entries/{cal.supper}/tickets",
        json={"ticket_type_id": cal.supper_seat, "quantity": 1},
    )
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "login_required"
    assert (await web.client.get("/events/api/tickets")).status_code == 401

    # A form posted anyway says so and adds nothing.
    html = await site.follow(
        await web.form(f"/events/{cal.supper}/tickets/", **{f"quantity_{cal.supper_seat}": "2"})
    )
    assert "Sign in to buy tickets." in html
    await web.login("alice")
    assert await site.my_tickets() == []


async def test_buying_tickets_puts_pending_tickets_in_the_cart_and_says_so(site: Site) -> None:
    cal, web = site.cal, site.web
    await web.login("alice")
    html = await site.page(f"/events/{cal.supper}/")
    assert badge(html) == "0"  # the summary is cached now
    assert f'name="quantity_{cal.supper_seat}"' in html and "Buy tickets" in html

    response = await web.form(
        f"/events/{cal.supper}/tickets/",
        **{f"quantity_{cal.supper_seat}": "2", f"quantity_{cal.cooks_table}": "1"},
    )
    assert response.headers["Location"] == f"/events/{cal.supper}/"
    html = await site.follow(response)
    assert "Added 2 × Supper, 1 × Cook&#39;s table to your cart." in html
    assert "In your cart:" in html and 'href="/cart/"' in html
    assert REFUND_NOTE in html
    assert badge(html) == "3"  # the cart's cached summary was dropped

    tickets = await site.my_tickets()
    assert [(t["ticket_type_id"], t["state"], t["order_id"]) for t in tickets] == [
        (cal.supper_seat, "pending", None),
        (cal.supper_seat, "pending", None),
        (cal.cooks_table, "pending", None),
    ]
    assert set(tickets[0]) == {"ticket_id", "entry_id", "ticket_type_id", "state", "order_id"}
    # In a cart, not sold: everyone can still buy all five seats at the cook's table.
    assert await site.available(cal.supper, cal.cooks_table) == 5
    cart = await web.cart()
    assert cart["count"] == 3
    lines = [line for g in cart["groups"] for line in g["lines"]]
    assert {line["kind"] for line in lines} == {"ticket"}
    assert {line["entry_id"] for line in lines} == {cal.supper}


async def test_more_tickets_than_are_left_are_refused_on_the_page(site: Site) -> None:
    cal, web = site.cal, site.web
    await cal.sell(cal.cooks_table, 4)
    await web.login("alice")
    html = await site.page(f"/events/{cal.supper}/")
    assert "1 left" in html
    html = await site.follow(
        await web.form(f"/events/{cal.supper}/tickets/", **{f"quantity_{cal.cooks_table}": "2"})
    )
    assert "only 1 “Cook&#39;s table” ticket is left for Harvest supper" in html
    assert await site.my_tickets() == []
    await cal.sell(cal.cooks_table, 1)
    html = await site.page(f"/events/{cal.supper}/")
    assert f'name="quantity_{cal.cooks_table}"' not in html
    assert "Sold out" in html


async def test_a_sold_out_event_says_so_rather_than_asking_to_sign_in(site: Site) -> None:
    cal = site.cal
    await cal.sell(cal.members_seat, 30)
    html = await site.page(f"/events/{cal.members_evening}/")
    assert "Sold out." in html and "Sign in to buy tickets" not in html
    assert (await site.entries())[cal.members_evening]["ticket_types"][0]["available"] == 0


async def test_checkout_claims_the_tickets_and_only_then_are_they_sold(site: Site) -> None:
    cal, web = site.cal, site.web
    await web.login("alice")
    response = await web.client.post(
        f"/events/api/entries/{cal.supper}/tickets",
        json={"ticket_type_id": cal.cooks_table, "quantity": 4},
    )
    assert response.status_code == 201
    assert await site.available(cal.supper, cal.cooks_table) == 5
    response = await web.client.post("/api/v1/checkout", json={"page_slug": "garden"})
    assert response.status_code == 201, await response.get_json()
    order_id = (await response.get_json())["order_id"]
    assert await site.available(cal.supper, cal.cooks_table) == 1
    assert {(t["state"], t["order_id"]) for t in await site.my_tickets()} == {
        ("reserved", order_id)
    }


# --------------------------------------------------------------------------- bookings


async def test_an_anonymous_visitor_books_a_place_and_keeps_it_after_logging_in(
    site: Site,
) -> None:
    cal, web = site.cal, site.web
    html = await site.page(f"/events/{cal.bread_class}/")
    assert f'action="/events/{cal.bread_class}/book/"' in html and "Book · £35.00" in html
    async with web.client.session_transaction() as session:
        assert "sid" not in session

    html = await site.follow(await web.form(f"/events/{cal.bread_class}/book/"))
    async with web.client.session_transaction() as session:
        assert len(session["sid"]) >= 24  # the cart's anonymous session, as on adding
    assert "Booked: Sourdough bread-making class" in html
    assert "You have booked a place" in html and badge(html) == "1"
    html = await site.follow(await web.form(f"/events/{cal.bread_class}/book/"))
    assert "is already in your cart" in html and badge(html) == "1"

    cart = await web.cart()
    [line] = [line for g in cart["groups"] for line in g["lines"]]
    assert (line["kind"], line["entry_id"], line["unit_price"]) == (
        "booking",
        cal.bread_class,
        "35.00",
    )
    assert cart["groups"][0]["page"]["slug"] == "bakery"

    await web.login("alice")
    cart = await web.cart()
    assert cart["user_id"] is not None
    assert [line["entry_id"] for g in cart["groups"] for line in g["lines"]] == [cal.bread_class]


async def test_forms_without_the_visitors_token_change_nothing(site: Site) -> None:
    cal, web = site.cal, site.web
    response = await web.client.post(f"/events/{cal.bread_class}/book/", form={})
    assert response.status_code == 400
    assert "The form had expired" in (await response.get_data()).decode()
    assert (await web.cart())["count"] == 0


async def test_a_date_that_has_passed_is_gone_from_the_lists_and_cannot_be_booked(
    site: Site,
) -> None:
    cal, web = site.cal, site.web
    web.clock.advance(days=8)
    assert cal.bread_class not in await site.entries()
    assert "Sourdough bread-making class" not in await site.page("/events/")
    html = await site.page(f"/events/{cal.bread_class}/")
    assert "This took place on" in html
    assert f'action="/events/{cal.bread_class}/book/"' not in html
    response = await web.client.post(f"/events/api/entries/{cal.bread_class}/book", json={})
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "event_over"


# --------------------------------------------------------------------------- lists


async def test_events_page_and_shop_front_list_what_is_coming_by_page(site: Site) -> None:
    cal = site.cal
    html = await site.page("/events/")
    bakery = html.index('data-page="bakery"')
    garden = html.index('data-page="garden"')
    coop = html.index('data-page="site"')
    assert bakery < html.index("Sourdough bread-making class") < garden
    assert garden < html.index("Harvest supper") < coop
    assert coop < html.index("Members&#39; evening")
    assert f'href="/events/{cal.supper}/"' in html

    front = await site.page("/")
    assert "What's on" in front and 'href="/events/"' in front
    for entry_id in (cal.bread_class, cal.supper, cal.members_evening):
        assert f'href="/events/{entry_id}/"' in front
    assert "Add to cart" in front  # the products are still there


async def test_an_unknown_entry_is_not_found(site: Site) -> None:
    for path in ("/events/999999/", "/events/nope/"):
        assert (await site.web.client.get(path)).status_code == 404
    response = await site.web.client.post("/events/api/entries/999999/book", json={})
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "entry_not_found"


# --------------------------------------------------------------------------- JSON


async def test_the_entries_json_is_as_the_design_says(site: Site) -> None:
    cal = site.cal
    entries = await site.entries()
    supper = entries[cal.supper]
    assert set(supper) == {
        "id",
        "name",
        "start_at",
        "end_at",
        "cost",
        "page_slug",
        "bookable",
        "ticket_types",
    }
    assert (supper["name"], supper["page_slug"], supper["bookable"]) == (
        "Harvest supper",
        "garden",
        False,
    )
    assert supper["start_at"].endswith("+00:00")
    assert supper["ticket_types"] == [
        {"id": cal.supper_seat, "name": "Supper", "cost": "18.00", "capacity": 40, "available": 40},
        {
            "id": cal.cooks_table,
            "name": "Cook's table",
            "cost": "30.00",
            "capacity": 5,
            "available": 5,
        },
    ]
    bread = entries[cal.bread_class]
    assert (bread["cost"], bread["page_slug"], bread["bookable"], bread["ticket_types"]) == (
        "35.00",
        "bakery",
        True,
        [],
    )
    assert entries[cal.members_evening]["page_slug"] is None
    assert entries[cal.members_evening]["end_at"] is None
    # Soonest first.
    assert list(entries) == [cal.bread_class, cal.members_evening, cal.supper]


async def test_booking_and_buying_through_the_json_api(site: Site) -> None:
    cal, web = site.cal, site.web
    response = await web.client.post(f"/events/api/entries/{cal.bread_class}/book", json={})
    assert response.status_code == 201
    assert await response.get_json() == {
        "entry_id": cal.bread_class,
        "state": "pending",
        "already_in_cart": False,
    }
    response = await web.client.post(f"/events/api/entries/{cal.supper}/book", json={})
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "not_bookable"

    await web.login("alice")
    path = f"/events/api/entries/{cal.supper}/tickets"
    response = await web.client.post(path, json={"ticket_type_id": cal.cooks_table, "quantity": 2})
    assert response.status_code == 201
    body = await response.get_json()
    assert (body["in_cart"], body["added"], body["message"]) == (2, 2, REFUND_NOTE)

    async def error(payload: dict[str, Any], entry_id: int = cal.supper) -> tuple[int, Any]:
        response = await web.client.post(f"/events/api/entries/{entry_id}/tickets", json=payload)
        return response.status_code, (await response.get_json())["error"]

    for quantity in (0, -1, "two", 1.5):
        status, err = await error({"ticket_type_id": cal.cooks_table, "quantity": quantity})
        assert (status, err["code"]) == (400, "invalid_quantity")
    status, err = await error({"quantity": 1})
    assert (status, err["code"]) == (400, "bad_input")
    status, err = await error({"ticket_type_id": 999999, "quantity": 1})
    assert (status, err["code"]) == (404, "ticket_type_not_found")
    status, err = await error({"ticket_type_id": cal.members_seat, "quantity": 1})
    assert (status, err["code"]) == (404, "ticket_type_not_found")
    status, err = await error({"ticket_type_id": cal.supper_seat, "quantity": 1}, 999999)
    assert (status, err["code"]) == (404, "entry_not_found")
    status, err = await error({"ticket_type_id": cal.cooks_table, "quantity": 4})
    assert (status, err["code"]) == (409, "sold_out")
    assert (err["entry_id"], err["ticket_type_id"], err["left"]) == (cal.supper, cal.cooks_table, 5)
    assert "Harvest supper" in err["message"]

    assert [t["state"] for t in await site.my_tickets()] == ["pending", "pending"]


async def test_the_json_api_refuses_cross_site_posts_and_bodies_that_are_not_json(
    site: Site,
) -> None:
    cal, web = site.cal, site.web
    path = f"/events/api/entries/{cal.bread_class}/book"
    response = await web.client.post(path, form={"x": "1"})
    assert response.status_code == 415
    response = await web.client.post(path, json={}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert (await web.cart())["count"] == 0
