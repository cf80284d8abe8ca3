"""Bookings and tickets through checkout and payment, with the real events sibling on
PostgreSQL, really in parallel: the last seats never oversell, a paid order's tickets are
confirmed once however many webhooks arrive, and an expired order gives them back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from quart.typing import TestClientProtocol as Client

from rose_cart.standalone.events.calendar import ReferenceCalendar
from tests.standalone.events.conftest import Calendar, make_calendar
from tests.web.conftest import Web, make_web

SALAD, SOURDOUGH = 7, 1  # the garden's and the bakery's


async def _setup(postgres_url: str) -> tuple[Web, Calendar]:
    web = make_web(postgres_url)
    events = web.app.extensions["rose_cart"].extras["events"]
    assert isinstance(events, ReferenceCalendar)
    return web, await make_calendar(events, web.clock)


async def _buyer(web: Web, name: str, cal: Calendar, seats: int = 1) -> Client:
    """A logged-in buyer with seats at the cook's table, salad from the garden and bread
    from the bakery in the cart."""
    client = web.app.test_client()
    assert (await client.post("/auth/dev-login", json={"username": name})).status_code == 200
    for product in (SALAD, SOURDOUGH):
        response = await client.post("/api/v1/cart/items", json={"product_id": product})
        assert response.status_code == 201
    response = await client.post(
        f"/events/api/entries/{cal.supper}/tickets",
        json={"ticket_type_id": cal.cooks_table, "quantity": seats},
    )
    assert response.status_code == 201, await response.get_json()
    return client


def _kinds(cart: dict[str, Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for group in cart["groups"]:
        for line in group["lines"]:
            found[line["kind"]] = found.get(line["kind"], 0) + line["quantity"]
    return found


async def _tickets(client: Client) -> list[str]:
    response = await client.get("/events/api/tickets")
    return sorted(t["state"] for t in await response.get_json())


async def _pay(web: Web, client: Client, payment_url: str, order_id: int) -> None:
    checkout_id = payment_url.rsplit("/", 1)[-1]
    web.payments.settle(checkout_id, "PAID")
    response = await client.post(f"/api/v1/orders/{order_id}/check", json={})
    assert (await response.get_json())["status"] == "paid"


async def test_twenty_buyers_racing_for_the_last_five_seats_through_checkout(
    postgres_url: str,
) -> None:
    web, cal = await _setup(postgres_url)
    try:
        await cal.sell(cal.cooks_table, 0)  # nothing sold yet: all five are left
        buyers = [await _buyer(web, f"racer{n}", cal) for n in range(20)]
        web.payments.create_delay = 0.02
        responses = await asyncio.gather(
            *[b.post("/api/v1/checkout", json={"page_slug": "garden"}) for b in buyers]
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] * 5 + [409] * 15
        winners: list[tuple[Client, dict[str, Any]]] = []
        for buyer, response in zip(buyers, responses, strict=True):
            body = await response.get_json()
            if response.status_code == 409:
                assert body["error"]["code"] == "sold_out"
                assert "Cook" in body["error"]["message"]
                # Nothing of theirs was claimed or lost: every line is still in the cart.
                assert _kinds(await (await buyer.get("/api/v1/cart")).get_json()) == {
                    "product": 2,
                    "ticket": 1,
                }
                assert await _tickets(buyer) == ["pending"]
            else:
                winners.append((buyer, body))
        assert await cal.available(cal.cooks_table) == 0

        for buyer, body in winners:
            await _pay(web, buyer, body["payment_url"], body["order_id"])
        await web.app.extensions["rose_cart"].relay.run_until_idle()
        for buyer, _ in winners:
            assert await _tickets(buyer) == ["confirmed"]
            # Only the garden's lines were ordered; the bakery's bread stays in the cart.
            assert _kinds(await (await buyer.get("/api/v1/cart")).get_json()) == {"product": 1}
        assert await cal.available(cal.cooks_table) == 0
    finally:
        await web.app.extensions["rose_cart"].aclose()


async def test_fifty_webhooks_confirm_a_paid_orders_tickets_and_booking_once(
    postgres_url: str,
) -> None:
    web, cal = await _setup(postgres_url)
    services = web.app.extensions["rose_cart"]
    try:
        buyer = await _buyer(web, "hannah", cal, seats=2)
        response = await buyer.post("/api/v1/checkout", json={"page_slug": "garden"})
        body = await response.get_json()
        order_id = body["order_id"]
        checkout_id = body["payment_url"].rsplit("/", 1)[-1]
        web.payments.settle(checkout_id, "PAID")
        order = await services.payments.get(order_id)
        hook = f"/checkout/webhook/{order_id}/{order.webhook_token}/"
        payload = json.dumps({"event_type": "CHECKOUT_STATUS_CHANGED", "id": checkout_id})
        replies = await asyncio.gather(
            *[web.app.test_client().post(hook, data=payload) for _ in range(50)],
            *[services.relay.run_until_idle() for _ in range(3)],
        )
        assert all(r.status_code == 204 for r in replies[:50])
        await services.relay.run_until_idle()
        assert await _tickets(buyer) == ["confirmed", "confirmed"]
        async with services.cart.uow() as tx:
            records = await tx.outbox.for_order(order_id)
        assert [r.type for r in records].count("rose:OrderPaid") == 1
        assert [r.type for r in records].count("confirm_claims") == 1
        assert all(r.status == "done" for r in records)
        order_json = await (await buyer.get(f"/api/v1/orders/{order_id}")).get_json()
        assert [t["state"] for t in order_json["tickets"]] == ["confirmed", "confirmed"]
    finally:
        await services.aclose()


async def test_an_expired_orders_bookings_and_tickets_are_back_in_the_cart(
    postgres_url: str,
) -> None:
    web, cal = await _setup(postgres_url)
    services = web.app.extensions["rose_cart"]
    try:
        buyer = await _buyer(web, "ivy", cal, seats=3)
        response = await buyer.post(f"/events/api/entries/{cal.bread_class}/book", json={})
        assert response.status_code == 201
        # The bread class is the bakery's: its group checks out bread and the booking.
        bakery = await buyer.post("/api/v1/checkout", json={"page_slug": "bakery"})
        garden = await buyer.post("/api/v1/checkout", json={"page_slug": "garden"})
        assert bakery.status_code == garden.status_code == 201
        assert await cal.available(cal.cooks_table) == 2
        web.clock.advance(minutes=36)
        await services.payments.reconcile()
        await services.relay.run_until_idle()
        for response in (bakery, garden):
            order = await services.payments.get((await response.get_json())["order_id"])
            assert order.status.value == "expired"
        cart = await (await buyer.get("/api/v1/cart")).get_json()
        assert _kinds(cart) == {"product": 2, "booking": 1, "ticket": 3}
        assert await _tickets(buyer) == ["pending"] * 3
        assert await cal.available(cal.cooks_table) == 5
        assert web.payments.live() == []
    finally:
        await services.aclose()
