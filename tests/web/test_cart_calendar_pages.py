"""Bookings and tickets on the cart pages, their forms, checkout and the order page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from rose_cart.domain.identity import CartIdentity
from tests.fakes import FakeCalendar
from tests.web.conftest import Web, make_web

NOTICE = "If the event sells out before payment, you will be refunded."


@pytest.fixture
def events() -> FakeCalendar:
    return FakeCalendar()


@pytest.fixture
async def web(database_url: str, events: FakeCalendar) -> AsyncIterator[Web]:
    w = make_web(database_url, calendar=events)
    async with w.app.app_context():
        yield w
    await w.app.extensions["rose_cart"].aclose()


async def alice_with_a_mixed_cart(web: Web, events: FakeCalendar) -> int:
    """Alice has two sourdough loaves and a bread class at the bakery, and two adult and one
    child ticket for the chapel's harvest supper."""
    uid = await web.login("alice")
    await web.form("/cart/add/", product_id="1", quantity="2")
    events.book(CartIdentity(user_id=uid), 40, "Bread-making class", "20.00", page_id=101)
    events.add_ticket_type(3, 50, "Harvest supper", "Adult", "12.00", page_id=103, capacity=10)
    events.add_ticket_type(4, 50, "Harvest supper", "Child", "5.00", page_id=103)
    events.hold_tickets(uid, 3, 2)
    events.hold_tickets(uid, 4, 1)
    return uid


async def page(web: Web, path: str) -> str:
    return (await (await web.client.get(path)).get_data()).decode()


def group_html(html: str, slug: str) -> str:
    start = html.index(f'data-page="{slug}"')
    end = html.find("</article>", start)
    return html[start:end]


def badge(html: str) -> str:
    found = re.search(r'class="badge[^"]*" data-count="(\d+)"', html)
    assert found is not None
    return found.group(1)


async def test_the_cart_shows_bookings_and_tickets_beside_products_with_subtotals(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_a_mixed_cart(web, events)
    html = await page(web, "/cart/")
    bakery = group_html(html, "bakery")
    assert bakery.index("Sourdough loaf") < bakery.index("Bread-making class")
    assert "Products subtotal" in bakery and "£9.00" in bakery
    assert "Bookings subtotal" in bakery and "£20.00" in bakery
    assert "Sat 05 Dec, 18:00" in bakery  # when the class is
    assert "2 products · 1 booking" in bakery and "£29.00" in bakery
    assert 'action="/cart/bookings/40/remove/"' in bakery
    chapel = group_html(html, "events")
    # One line per ticket type, with its quantity to change.
    assert chapel.count('class="cart-line"') == 2
    assert re.search(r'action="/cart/tickets/3/".*?name="quantity" value="2"', chapel, re.S)
    assert 'action="/cart/tickets/4/remove/"' in chapel
    assert "3 tickets" in chapel and "£29.00" in chapel and NOTICE in chapel
    assert NOTICE not in bakery
    # The whole cart: 2 loaves + 1 booking + 3 tickets, everywhere it is counted.
    assert "6 items from 2 sellers" in html and "£58.00" in html
    assert badge(html) == "6"
    assert badge(await page(web, "/internal/fragments/cart-mini")) == "6"
    overview = await page(web, "/cart/overview/")
    assert "2 products · 1 booking" in group_html(overview, "bakery")
    assert "3 tickets" in group_html(overview, "events")
    assert NOTICE in await page(web, "/cart/events/")


async def test_remove_a_booking_and_change_tickets_with_the_forms(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_a_mixed_cart(web, events)
    response = await web.form("/cart/bookings/40/remove/", next="/cart/bakery/")
    assert response.status_code == 303 and response.headers["Location"] == "/cart/bakery/"
    html = await page(web, "/cart/bakery/")
    assert "Removed your booking for Bread-making class." in html
    assert "Bread-making class" not in html.replace("Removed your booking for Bread-making", "")

    await web.form("/cart/tickets/3/", quantity="4")
    html = await page(web, "/cart/")
    assert "Harvest supper — Adult: 4 tickets." in html and badge(html) == "7"
    await web.form("/cart/tickets/4/", quantity="0")
    html = await page(web, "/cart/")
    assert "Removed your Harvest supper — Child tickets." in html
    assert 'data-ticket-type-id="4"' not in html
    await web.form("/cart/tickets/3/remove/")
    html = await page(web, "/cart/")
    assert 'data-kind="ticket"' not in html and NOTICE not in html and badge(html) == "2"


async def test_a_change_from_htmx_answers_with_the_new_badge(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_a_mixed_cart(web, events)
    async with web.client.session_transaction() as session:
        session["csrf"] = "tok"
    response = await web.client.post(
        "/cart/tickets/3/",
        form={"csrf_token": "tok", "quantity": "1"},
        headers={"HX-Request": "true", "HX-Target": "cart-mini"},
    )
    html = (await response.get_data()).decode()
    assert response.status_code == 200
    assert badge(html) == "5" and "Harvest supper — Adult: 1 ticket." in html


@pytest.mark.parametrize(
    "path,fields,status,code",
    [
        ("/cart/bookings/99/remove/", {}, 404, "entry_not_found"),
        ("/cart/bookings/abc/remove/", {}, 404, "entry_not_found"),
        ("/cart/tickets/77/", {"quantity": "1"}, 404, "ticket_type_not_found"),
        ("/cart/tickets/77/remove/", {}, 404, "ticket_type_not_found"),
        ("/cart/tickets/3/", {"quantity": "-1"}, 400, "invalid_quantity"),
        ("/cart/tickets/3/", {"quantity": ""}, 400, "invalid_quantity"),
        ("/cart/tickets/3/", {"quantity": "11"}, 409, "sold_out"),
    ],
)
async def test_bad_changes_get_a_page_with_the_reason_and_the_cart_unchanged(
    web: Web, events: FakeCalendar, path: str, fields: dict[str, str], status: int, code: str
) -> None:
    await alice_with_a_mixed_cart(web, events)
    before = await web.cart()
    response = await web.form(path, **fields)
    html = (await response.get_data()).decode()
    assert response.status_code == status
    assert f'data-error-code="{code}"' in html
    if code == "sold_out":
        assert "Only 10 left of the Adult tickets for Harvest supper." in html
    assert await web.cart() == before


async def test_events_service_down_gets_a_clear_page_and_the_cart_unchanged(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_a_mixed_cart(web, events)
    before = await web.cart()
    events.down = True
    response = await web.form("/cart/bookings/40/remove/")
    html = (await response.get_data()).decode()
    assert response.status_code == 503 and 'data-error-code="sibling_unavailable"' in html
    assert "events service is not answering" in html
    assert (await web.form("/cart/tickets/3/", quantity="1")).status_code == 503
    events.down = False
    assert await web.cart() == before


async def test_forms_without_the_csrf_token_are_refused(web: Web, events: FakeCalendar) -> None:
    await alice_with_a_mixed_cart(web, events)
    for path in ["/cart/bookings/40/remove/", "/cart/tickets/3/remove/"]:
        response = await web.client.post(path, form={"quantity": "0"})
        assert response.status_code == 400
    assert (await web.cart())["count"] == 6


async def test_checkout_with_a_sold_out_ticket_says_what_is_left_and_keeps_the_cart(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_a_mixed_cart(web, events)
    events.ticket_types[3].sold_elsewhere = 9  # one adult ticket left; Alice holds two
    before = await web.cart()
    response = await web.form("/cart/events/checkout/", idempotency_key="sold-out-form-1")
    html = (await response.get_data()).decode()
    assert response.status_code == 409 and 'data-error-code="sold_out"' in html
    assert "Only 1 left of the Adult tickets for Harvest supper; you asked for 2." in html
    assert web.payments.create_calls == 0
    assert await web.cart() == before


async def test_the_order_page_lists_bookings_and_tickets_with_their_states(
    web: Web, events: FakeCalendar
) -> None:
    await alice_with_a_mixed_cart(web, events)
    response = await web.form("/cart/events/checkout/", idempotency_key="tickets-form-1")
    assert response.status_code == 303
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    assert order["total"] == "29.00"
    html = await page(web, f"/orders/{order['id']}/")
    # Tickets of one type are one row with their number.
    assert re.search(r"Harvest supper — Adult.*?reserved.*?>2<", html, re.S)
    assert re.search(r"Harvest supper — Child.*?reserved.*?>1<", html, re.S)
    web.payments.settle(response.headers["Location"].rsplit("/", 1)[-1], "PAID")
    html = await page(web, f"/checkout/return/{order['id']}/")
    assert 'data-order-status="paid"' in html
    await web.app.extensions["rose_cart"].relay.run_until_idle()
    html = await page(web, f"/orders/{order['id']}/")
    assert "confirmed" in html and "£29.00" in html

    await web.form("/cart/bakery/checkout/", idempotency_key="booking-form-1")
    orders = await (await web.client.get("/api/v1/orders")).get_json()
    bakery = next(o for o in orders if o["page"]["slug"] == "bakery")
    html = await page(web, f"/orders/{bakery['id']}/")
    assert "Bread-making class" in html and "Sat 05 Dec, 18:00" in html and "ordered" in html
