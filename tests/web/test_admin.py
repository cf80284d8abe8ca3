"""The admins' order pages and JSON: every order, filtered; one order's whole story; refunds
through SumUp that the payer sees; parked commands put back in the queue. Anyone who is not
an admin is told there is nothing there."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rose_cart.domain.errors import (
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    SiblingUnavailable,
)
from rose_cart.ports import OutboxRecord
from rose_cart.services.container import Services
from rose_cart.standalone.siblings import EmptyCalendar, ReferenceSubscriber
from tests.web.conftest import Web, make_web


class EventsService(EmptyCalendar):
    """The events service, which can be down when the relay confirms an order's bookings."""

    def __init__(self) -> None:
        self.down = False
        self.confirmed: list[int] = []

    async def confirm_entries_for_order(self, order_id: int) -> None:
        if self.down:
            raise SiblingUnavailable("The events service is not answering.")
        self.confirmed.append(order_id)


@pytest.fixture
def events() -> EventsService:
    return EventsService()


@pytest.fixture
async def web(database_url: str, events: EventsService) -> AsyncIterator[Web]:
    w = make_web(database_url, calendar=events, admin_users="admin")
    async with w.app.app_context():
        yield w
    await w.app.extensions["rose_cart"].aclose()


_keys = itertools.count(1)


def services(web: Web) -> Services:
    built: Services = web.app.extensions["rose_cart"]
    return built


def visitor(web: Web) -> Web:
    """Another browser on the same site, with cookies of its own."""
    return dataclasses.replace(web, client=web.app.test_client())


async def as_admin(web: Web) -> Web:
    admin = visitor(web)
    await admin.login("admin")
    return admin


async def html(response: Any) -> str:
    return str((await response.get_data()).decode())


async def place_order(shopper: Web, product_id: int, quantity: int = 1) -> tuple[int, str]:
    """Check out one product's page; the order id and its SumUp checkout id."""
    await shopper.form("/cart/add/", product_id=str(product_id), quantity=str(quantity))
    response = await shopper.form("/cart/checkout/", idempotency_key=f"admin-key-{next(_keys):04d}")
    assert response.status_code == 303, await html(response)
    orders = await (await shopper.client.get("/api/v1/orders")).get_json()
    return max(o["id"] for o in orders), response.headers["Location"].rsplit("/", 1)[-1]


async def pay(shopper: Web, order_id: int, checkout_id: str) -> None:
    shopper.payments.settle(checkout_id)
    response = await shopper.client.post(f"/api/v1/orders/{order_id}/check", json={})
    assert (await response.get_json())["status"] == "paid"


async def paid_order(
    web: Web, username: str = "alice", product_id: int = 1, quantity: int = 2
) -> tuple[Web, int]:
    """A logged-in payer's paid order: two sourdough loaves from the bakery, £9.00."""
    shopper = visitor(web)
    await shopper.login(username)
    order_id, checkout_id = await place_order(shopper, product_id, quantity)
    await pay(shopper, order_id, checkout_id)
    return shopper, order_id


async def paid_twice(web: Web, username: str = "carol") -> tuple[Web, int]:
    """A focaccia (£3.90) paid through two checkouts: the payer's card was declined, they
    asked to pay again and paid, and SumUp then took the first page's payment as well."""
    shopper = visitor(web)
    await shopper.login(username)
    order_id, first = await place_order(shopper, 4)
    web.payments.settle(first, "FAILED")
    await shopper.client.post(f"/api/v1/orders/{order_id}/check", json={})
    again = await shopper.form(f"/orders/{order_id}/pay/")
    second = again.headers["Location"].rsplit("/", 1)[-1]
    assert second != first
    await pay(shopper, order_id, second)
    web.payments.settle(first, "PAID")
    token = (await services(web).payments.get(order_id)).webhook_token
    hook = await web.app.test_client().post(
        f"/checkout/webhook/{order_id}/{token}/",
        json={"event_type": "CHECKOUT_STATUS_CHANGED", "id": first},
    )
    assert hook.status_code == 204
    return shopper, order_id


async def admin_order(admin: Web, order_id: int) -> dict[str, Any]:
    response = await admin.client.get(f"/api/v1/admin/orders/{order_id}")
    assert response.status_code == 200
    data: dict[str, Any] = await response.get_json()
    return data


async def admin_list(admin: Web, query: str = "") -> list[int]:
    response = await admin.client.get(f"/api/v1/admin/orders{query}")
    assert response.status_code == 200
    return [o["id"] for o in await response.get_json()]


async def outbox(web: Web, order_id: int) -> list[OutboxRecord]:
    async with services(web).payments.uow() as tx:
        return await tx.outbox.for_order(order_id)


def delivered(web: Web, order_id: int, type_: str) -> list[dict[str, Any]]:
    """Activities of one type the subscriber was sent about an order."""
    subscriber = services(web).extras["subscriber"]
    assert isinstance(subscriber, ReferenceSubscriber)
    return [
        a
        for a in subscriber.received.values()
        if a["type"] == type_ and a["object"]["id"] == str(order_id)
    ]


async def error_code(response: Any) -> str:
    data = await response.get_json()
    return str(data["error"]["code"])


# --------------------------------------------------------------------------- who may look


async def test_everyone_but_an_admin_is_told_there_is_nothing_there(web: Web) -> None:
    payer, order_id = await paid_order(web)
    [record, *_] = await outbox(web, order_id)
    anonymous = visitor(web)
    bob = visitor(web)
    await bob.login("bob")
    admin_ish = visitor(web)
    await admin_ish.login("admins")  # a name that merely starts like the admin's
    for who in (anonymous, bob, payer, admin_ish):
        for path in (
            "/admin/orders/",
            "/admin/orders/?attention=true",
            f"/admin/orders/{order_id}/",
        ):
            response = await who.client.get(path)
            assert response.status_code == 404, path
            page = await html(response)
            assert 'data-error-code="not_found"' in page and "£9.00" not in page
        for path in (
            "/api/v1/admin/orders",
            "/api/v1/admin/orders?needs_attention=true",
            f"/api/v1/admin/orders/{order_id}",
        ):
            response = await who.client.get(path)
            assert response.status_code == 404, path
            assert await error_code(response) == "not_found"
        form = await who.form(f"/admin/orders/{order_id}/refund/", amount="")
        assert form.status_code == 404
        api = await who.client.post(f"/api/v1/admin/orders/{order_id}/refund", json={})
        assert api.status_code == 404 and await error_code(api) == "not_found"
        retry = await who.form(f"/admin/orders/{order_id}/outbox/{record.id}/retry/")
        assert retry.status_code == 404
    # Nothing was refunded or even asked for, and the payer still sees a paid order.
    assert web.payments.refunds == []
    assert await services(web).payments.refunds(order_id) == []
    mine = await (await payer.client.get(f"/api/v1/orders/{order_id}")).get_json()
    assert (mine["status"], mine["refunded"], mine["refunds"]) == ("paid", "0.00", [])


# --------------------------------------------------------------------------- finding orders


async def test_admin_sees_every_owners_orders_and_filters_them(web: Web) -> None:
    _, alice_order = await paid_order(web, "alice")
    bob = visitor(web)
    await bob.login("bob")
    bob_order, _ = await place_order(bob, 7)  # salad leaves, from the garden; not paid
    stranger = visitor(web)
    stranger_order, _ = await place_order(stranger, 11)  # a tote bag from the co-op's own shop
    _, carol_order = await paid_twice(web, "carol")
    admin = await as_admin(web)

    everything = await (await admin.client.get("/api/v1/admin/orders")).get_json()
    assert {o["id"]: o["user_id"] is not None for o in everything} == {
        alice_order: True,
        bob_order: True,
        stranger_order: False,
        carol_order: True,
    }
    listing = await html(await admin.client.get("/admin/orders/"))
    for order_id in (alice_order, bob_order, stranger_order, carol_order):
        assert f'href="/admin/orders/{order_id}/"' in listing

    assert sorted(await admin_list(admin, "?status=paid")) == sorted([alice_order, carol_order])
    assert sorted(await admin_list(admin, "?status=pending")) == sorted([bob_order, stranger_order])
    assert await admin_list(admin, "?status=refunded") == []
    assert await admin_list(admin, "?page_slug=garden") == [bob_order]
    assert sorted(await admin_list(admin, "?page_slug=bakery")) == sorted(
        [alice_order, carol_order]
    )
    assert await admin_list(admin, "?status=pending&page_slug=bakery") == []
    [flagged] = await (
        await admin.client.get("/api/v1/admin/orders?needs_attention=true")
    ).get_json()
    assert flagged["id"] == carol_order
    assert flagged["needs_refund"] is True and flagged["needs_attention"] is True
    assert "Paid twice" in flagged["attention"]
    unknown = await admin.client.get("/api/v1/admin/orders?status=shipped")
    error = (await unknown.get_json())["error"]
    assert unknown.status_code == 400 and error["code"] == "invalid_request"
    assert error["field"] == "status" and "'paid'" in error["message"]

    garden = await html(await admin.client.get("/admin/orders/?page=garden&status=pending"))
    assert f'href="/admin/orders/{bob_order}/"' in garden
    assert f'href="/admin/orders/{alice_order}/"' not in garden
    assert 'value="garden"' in garden  # the filter keeps what was asked
    needs = await html(await admin.client.get("/admin/orders/?attention=true"))
    assert f'href="/admin/orders/{carol_order}/"' in needs
    assert f'href="/admin/orders/{alice_order}/"' not in needs
    assert "Paid twice through two checkouts" in needs
    none = await html(await admin.client.get("/admin/orders/?status=refunded"))
    assert "No orders match." in none


async def test_order_page_tells_the_whole_story(web: Web) -> None:
    payer, order_id = await paid_twice(web)
    await services(web).relay.run_until_idle()
    admin = await as_admin(web)
    data = await admin_order(admin, order_id)
    assert [p["status"] for p in data["payments"]] == ["paid", "paid"]
    assert data["needs_refund"] is True and data["refunds"] == []
    assert {"Create", "rose:OrderPaid", "confirm_claims"} <= {r["type"] for r in data["outbox"]}
    assert all(r["status"] == "done" for r in data["outbox"])

    page = await html(await admin.client.get(f"/admin/orders/{order_id}/"))
    assert 'data-order-status="paid"' in page and 'data-needs-attention="true"' in page
    assert "The payer must be refunded." in page and "Paid twice through two checkouts" in page
    assert "Focaccia" in page or "focaccia" in page
    for payment in data["payments"]:
        assert payment["reference"] in page
    assert page.count("MSANDBOX") == 2  # both payments went to the site's account
    for record in data["outbox"]:
        assert f"{record['kind']}: {record['type']}" in page
    assert re.search(r"<h2>Refunds</h2>\s*<p>None.</p>", page)
    assert f'action="/admin/orders/{order_id}/refund/"' in page
    assert "£7.80" in page  # both payments may be refunded

    # Refunding one payment settles the flag; the page lists the refund and who made it.
    response = await admin.form(f"/admin/orders/{order_id}/refund/", amount="3.90")
    assert response.status_code == 303
    page = await html(await admin.client.get(response.headers["Location"]))
    assert "£3.90 — done" in page and "by admin" in page
    assert 'data-needs-attention="true"' not in page
    assert "activity: rose:OrderRefunded" in page
    assert await admin_list(admin, "?needs_attention=true") == []
    # The second payment was the one refunded; the payer sees what they got back.
    [(transaction, money, _)] = web.payments.refunds
    assert transaction == "txn_chk_2" and money is not None and str(money.amount) == "3.90"
    mine = await html(await payer.client.get(f"/orders/{order_id}/"))
    assert 'data-needs-refund="true"' not in mine
    assert "£3.90 of £7.80 went back to your card" in mine


# --------------------------------------------------------------------------- refunds


async def test_full_refund_through_the_form_shows_on_the_payers_page(web: Web) -> None:
    payer, order_id = await paid_order(web)
    admin = await as_admin(web)
    before = await html(await admin.client.get(f"/admin/orders/{order_id}/"))
    assert "empty refunds all that is left: £9.00" in before

    response = await admin.form(f"/admin/orders/{order_id}/refund/", amount="")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/orders/{order_id}/"
    page = await html(await admin.client.get(response.headers["Location"]))
    assert "Refunded. £9.00 refunded in all." in page
    assert 'data-order-status="refunded"' in page and "£9.00 — done" in page
    assert f'action="/admin/orders/{order_id}/refund/"' not in page  # nothing left to refund
    [(_, money, merchant)] = web.payments.refunds
    assert money is not None and str(money.amount) == "9.00" and merchant == "MSANDBOX"

    data = await admin_order(admin, order_id)
    assert (data["status"], data["refunded"]) == ("refunded", "9.00")
    assert [(r["amount"], r["status"], r["requested_by"]) for r in data["refunds"]] == [
        ("9.00", "done", "admin")
    ]
    assert [r["type"] for r in data["outbox"]].count("rose:OrderRefunded") == 1
    await services(web).relay.run_until_idle()
    [activity] = delivered(web, order_id, "rose:OrderRefunded")
    assert activity["object"]["amount"] == "9.00" and activity["object"]["refunded_total"] == "9.00"

    mine = await html(await payer.client.get(f"/orders/{order_id}/"))
    assert 'data-order-status="refunded"' in mine and 'data-refunded="9.00"' in mine
    assert "Refunded:" in mine and "£9.00 of £9.00 went back to your card" in mine
    assert "Thank you — your order is paid" not in mine
    api = await (await payer.client.get(f"/api/v1/orders/{order_id}")).get_json()
    assert (api["status"], api["refunded"]) == ("refunded", "9.00")
    assert [(r["amount"], r["status"]) for r in api["refunds"]] == [("9.00", "done")]
    listing = await html(await payer.client.get("/orders/"))
    assert 'data-order-status="refunded"' in listing


async def test_partial_refunds_through_the_api_then_the_rest(web: Web) -> None:
    payer, order_id = await paid_order(web)
    admin = await as_admin(web)
    url = f"/api/v1/admin/orders/{order_id}/refund"

    part = await admin.client.post(url, json={"amount": "2.50"})
    assert part.status_code == 200
    data = await part.get_json()
    assert (data["status"], data["refunded"]) == ("partially_refunded", "2.50")
    assert [(r["amount"], r["status"]) for r in data["refunds"]] == [("2.50", "done")]
    mine = await (await payer.client.get(f"/api/v1/orders/{order_id}")).get_json()
    assert (mine["status"], mine["refunded"]) == ("partially_refunded", "2.50")
    page = await html(await payer.client.get(f"/orders/{order_id}/"))
    assert 'data-refunded="2.50"' in page and "Partly refunded:" in page
    assert "£2.50 of £9.00 went back to your card" in page

    too_much = await admin.client.post(url, json={"amount": "6.51"})
    assert too_much.status_code == 409 and await error_code(too_much) == "refund_exceeds_payment"
    assert "£6.50" in (await too_much.get_json())["error"]["message"]

    rest = await (await admin.client.post(url, json={})).get_json()
    assert (rest["status"], rest["refunded"]) == ("refunded", "9.00")
    assert [r["amount"] for r in rest["refunds"]] == ["2.50", "6.50"]
    assert [r["type"] for r in rest["outbox"]].count("rose:OrderRefunded") == 2
    again = await admin.client.post(url, json={})
    assert again.status_code == 409 and await error_code(again) == "refund_exceeds_payment"
    assert [str(m.amount) for _, m, _ in web.payments.refunds if m] == ["2.50", "6.50"]
    mine = await (await payer.client.get(f"/api/v1/orders/{order_id}")).get_json()
    assert (mine["status"], mine["refunded"]) == ("refunded", "9.00")


async def test_partial_refund_through_the_form(web: Web) -> None:
    payer, order_id = await paid_order(web)
    admin = await as_admin(web)
    response = await admin.form(f"/admin/orders/{order_id}/refund/", amount=" 4.5 ")
    assert response.status_code == 303
    page = await html(await admin.client.get(response.headers["Location"]))
    assert 'data-order-status="partially_refunded"' in page and "£4.50 — done" in page
    assert "empty refunds all that is left: £4.50" in page
    mine = await html(await payer.client.get(f"/orders/{order_id}/"))
    assert "Partly refunded:" in mine and "£4.50 of £9.00 went back to your card" in mine


async def test_refunding_more_than_was_paid_changes_nothing(web: Web) -> None:
    payer, order_id = await paid_order(web)
    admin = await as_admin(web)
    api = await admin.client.post(
        f"/api/v1/admin/orders/{order_id}/refund", json={"amount": "9.01"}
    )
    assert api.status_code == 409 and await error_code(api) == "refund_exceeds_payment"
    assert (await api.get_json())["error"]["refundable"] == "9.00"
    form = await admin.form(f"/admin/orders/{order_id}/refund/", amount="100")
    assert form.status_code == 409
    page = await html(form)
    assert 'data-error-code="refund_exceeds_payment"' in page and "£9.00" in page
    assert web.payments.refunds == []
    data = await admin_order(admin, order_id)
    assert (data["status"], data["refunded"], data["refunds"]) == ("paid", "0.00", [])
    assert "rose:OrderRefunded" not in [r["type"] for r in data["outbox"]]


async def test_an_amount_that_is_not_a_positive_number_is_refused(web: Web) -> None:
    _, order_id = await paid_order(web)
    admin = await as_admin(web)
    amounts: list[Any] = ["abc", "0", "-1", "0.00", "NaN", "Infinity", "1e400", "4,50"]
    for amount in [*amounts, 1e300, -2, True, [], {"value": "1.00"}]:
        api = await admin.client.post(
            f"/api/v1/admin/orders/{order_id}/refund", json={"amount": amount}
        )
        assert api.status_code == 400, amount
        assert await error_code(api) == "invalid_amount"
    for amount in amounts:
        form = await admin.form(f"/admin/orders/{order_id}/refund/", amount=amount)
        assert form.status_code == 400, amount
        page = await html(form)
        assert 'data-error-code="invalid_amount"' in page and "such as 4.50" in page
    assert web.payments.refunds == []
    data = await admin_order(admin, order_id)
    assert (data["status"], data["refunds"]) == ("paid", [])


async def test_a_refund_sumup_refuses_leaves_the_order_as_it_was(web: Web) -> None:
    payer, order_id = await paid_order(web)
    admin = await as_admin(web)
    web.payments.fail_refund = PaymentProviderRejected(
        provider_status=409,
        provider_error_code="CONFLICT",
        provider_message="The transaction is not refundable in its current state",
    )
    api = await admin.client.post(f"/api/v1/admin/orders/{order_id}/refund", json={})
    assert api.status_code == 502 and await error_code(api) == "payment_provider_rejected"
    form = await admin.form(f"/admin/orders/{order_id}/refund/", amount="1.00")
    assert form.status_code == 502
    error_page = await html(form)
    assert 'data-error-code="payment_provider_rejected"' in error_page
    assert "refund" in error_page.lower() and "Your cart is safe" not in error_page

    data = await admin_order(admin, order_id)
    assert (data["status"], data["refunded"], data["needs_attention"]) == ("paid", "0.00", False)
    assert [(r["status"], r["error"]) for r in data["refunds"]] == [
        ("failed", "The transaction is not refundable in its current state")
    ] * 2
    assert "rose:OrderRefunded" not in [r["type"] for r in data["outbox"]]
    page = await html(await admin.client.get(f"/admin/orders/{order_id}/"))
    assert "failed" in page and "not refundable in its current state" in page
    assert "empty refunds all that is left: £9.00" in page  # still all refundable
    mine = await (await payer.client.get(f"/api/v1/orders/{order_id}")).get_json()
    assert (mine["status"], mine["refunded"], mine["refunds"]) == ("paid", "0.00", [])

    # Once SumUp accepts, the whole amount can still be refunded.
    web.payments.fail_refund = None
    done = await admin.client.post(f"/api/v1/admin/orders/{order_id}/refund", json={})
    assert (await done.get_json())["status"] == "refunded"


async def test_sumup_not_answering_a_refund_flags_the_order_for_a_person(web: Web) -> None:
    payer, order_id = await paid_order(web)
    admin = await as_admin(web)
    web.payments.fail_refund = PaymentProviderUnavailable(
        operation="refund", provider_message="timed out", timed_out=True
    )
    response = await admin.client.post(
        f"/api/v1/admin/orders/{order_id}/refund", json={"amount": "3.00"}
    )
    assert response.status_code == 502
    assert await error_code(response) == "payment_provider_unavailable"
    assert "try again" not in (await response.get_json())["error"]["message"].lower()

    data = await admin_order(admin, order_id)
    assert (data["status"], data["refunded"]) == ("paid", "0.00")
    assert data["needs_attention"] is True and "did not confirm a refund" in data["attention"]
    assert [(r["amount"], r["status"], r["error"]) for r in data["refunds"]] == [
        ("3.00", "unconfirmed", "timed out")
    ]
    assert await admin_list(admin, "?needs_attention=true") == [order_id]
    page = await html(await admin.client.get(f"/admin/orders/{order_id}/"))
    assert 'data-needs-attention="true"' in page and "check it in SumUp" in page
    assert "£3.00 — unconfirmed" in page
    # What may already have gone back is held: it cannot be refunded a second time.
    assert "empty refunds all that is left: £6.00" in page
    web.payments.fail_refund = None
    rest = await admin.client.post(
        f"/api/v1/admin/orders/{order_id}/refund", json={"amount": "6.01"}
    )
    assert rest.status_code == 409 and await error_code(rest) == "refund_exceeds_payment"
    # The payer is not told of money that may not have moved.
    mine = await html(await payer.client.get(f"/orders/{order_id}/"))
    assert 'data-order-status="paid"' in mine and "data-refunded" not in mine


# --------------------------------------------------------------------------- parked commands


async def test_a_parked_command_is_put_back_in_the_queue(web: Web, events: EventsService) -> None:
    events.down = True
    services(web).relay.max_attempts = 1
    _, order_id = await paid_order(web)
    report = await services(web).relay.run_until_idle()
    assert report.parked == 1 and events.confirmed == []
    [parked] = [r for r in await outbox(web, order_id) if r.status == "parked"]
    assert parked.type == "confirm_claims"

    admin = await as_admin(web)
    assert await admin_list(admin, "?needs_attention=true") == [order_id]
    listing = await html(await admin.client.get("/admin/orders/?attention=true"))
    assert f'href="/admin/orders/{order_id}/"' in listing
    assert "A command kept failing and is parked." in listing
    page = await html(await admin.client.get(f"/admin/orders/{order_id}/"))
    assert 'data-needs-attention="true"' in page
    assert "1 command kept failing and is parked below." in page
    assert 'data-outbox-status="parked"' in page and "The events service is not answering." in page
    retry_path = f"/admin/orders/{order_id}/outbox/{parked.id}/retry/"
    assert f'action="{retry_path}"' in page

    # Someone else cannot, and a record that is not parked cannot be put back.
    stranger = visitor(web)
    await stranger.login("bob")
    assert (await stranger.form(retry_path)).status_code == 404
    [done] = [r for r in await outbox(web, order_id) if r.status == "done"][:1]
    not_parked = await admin.form(f"/admin/orders/{order_id}/outbox/{done.id}/retry/")
    assert not_parked.status_code == 404

    events.down = False
    response = await admin.form(retry_path)
    assert response.status_code == 303
    page = await html(await admin.client.get(response.headers["Location"]))
    assert "Put back in the queue" in page and 'data-outbox-status="parked"' not in page
    await services(web).relay.run_until_idle()
    assert events.confirmed == [order_id]
    page = await html(await admin.client.get(f"/admin/orders/{order_id}/"))
    assert 'data-needs-attention="true"' not in page
    assert [r.status for r in await outbox(web, order_id)] == ["done"] * len(
        await outbox(web, order_id)
    )
    assert await admin_list(admin, "?needs_attention=true") == []
