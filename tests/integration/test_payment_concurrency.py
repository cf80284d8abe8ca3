"""Exactly-once under real parallelism on PostgreSQL: many webhooks, many double clicks,
several reconcilers."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import func, select

from rose_cart.adapters.db.tables import cart_items, outbox
from rose_cart.domain.identity import CartIdentity
from tests.web.conftest import TOKEN, Web, make_web


async def _count(web: Web, stmt: object) -> int:
    engine = web.app.extensions["rose_cart"].cart.uow.engine
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def _checked_out(web: Web) -> tuple[int, str, str]:
    await web.login("paula")
    await web.form("/cart/add/", product_id="1", quantity="2")
    await web.form("/cart/add/", product_id="4", quantity="1")
    response = await web.form("/cart/bakery/checkout/", idempotency_key="conc-key-0001")
    checkout_id = response.headers["Location"].rsplit("/", 1)[-1]
    [order] = await (await web.client.get("/api/v1/orders")).get_json()
    user_id = (await web.cart())["user_id"]
    stored = await web.app.extensions["rose_cart"].orders.owned(
        CartIdentity(user_id=user_id), order["id"]
    )
    return order["id"], checkout_id, stored.webhook_token


async def test_fifty_webhooks_and_the_return_page_pay_once(postgres_url: str) -> None:
    web = make_web(postgres_url)
    try:
        order_id, checkout_id, token = await _checked_out(web)
        web.payments.settle(checkout_id, "PAID")
        body = json.dumps({"event_type": "CHECKOUT_STATUS_CHANGED", "id": checkout_id})
        hooks = [
            web.app.test_client().post(f"/checkout/webhook/{order_id}/{token}/", data=body)
            for _ in range(50)
        ]
        responses = await asyncio.gather(*hooks, web.client.get(f"/checkout/return/{order_id}/"))
        assert all(r.status_code == 204 for r in responses[:-1])
        assert 'data-order-status="paid"' in (await responses[-1].get_data()).decode()
        paid = await _count(
            web,
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.type == "rose:OrderPaid", outbox.c.object_id == str(order_id)),
        )
        assert paid == 1
        deleted = await _count(
            web,
            select(func.count())
            .select_from(cart_items)
            .where(cart_items.c.order_id == order_id, cart_items.c.deleted_at.is_not(None)),
        )
        assert deleted == 2
        assert await web.quantities() == {}
        order = await (await web.client.get(f"/api/v1/orders/{order_id}")).get_json()
        assert order["status"] == "paid"
        assert [p["status"] for p in order["payments"]] == ["paid"]
    finally:
        await web.app.extensions["rose_cart"].aclose()


async def test_ten_concurrent_checkouts_with_one_key_make_one_order(postgres_url: str) -> None:
    web = make_web(postgres_url)
    try:
        await web.login("quinn")
        await web.form("/cart/add/", product_id="1", quantity="1")
        web.payments.create_delay = 0.05  # SumUp takes a moment, as it does
        async with web.client.session_transaction() as session:
            session["csrf"] = TOKEN
        responses = await asyncio.gather(
            *[
                web.client.post(
                    "/cart/bakery/checkout/",
                    form={"csrf_token": TOKEN, "idempotency_key": "ten-clicks-0001"},
                )
                for _ in range(10)
            ]
        )
        assert all(r.status_code == 303 for r in responses)
        assert len({r.headers["Location"] for r in responses}) == 1
        [order] = await (await web.client.get("/api/v1/orders")).get_json()
        assert len(web.payments.checkouts) == 1
        # The losing submissions wrote nothing: one line ordered, one announcement.
        services = web.app.extensions["rose_cart"]
        async with services.cart.uow() as tx:
            assert [(i.product_id, i.quantity) for i in await tx.orders.items(order["id"])] == [
                (1, 1)
            ]
            assert await tx.outbox.count("Create", str(order["id"])) == 1
            assert await tx.outbox.count("Create", str(order["id"] + 1)) == 0
    finally:
        await web.app.extensions["rose_cart"].aclose()


async def test_parallel_reconcilers_check_each_order_once(postgres_url: str) -> None:
    web = make_web(postgres_url)
    try:
        services = web.app.extensions["rose_cart"]
        for n in range(6):
            await web.login(f"buyer{n}")
            await web.form("/cart/add/", product_id="1")
            await web.form("/cart/bakery/checkout/", idempotency_key=f"recon-key-{n:04d}")
        web.payments.get_calls = 0
        # The next look is a minute ahead of the test's clock, which does not move: an order
        # one reconciler has finished is not due again for one that starts late (with no wait
        # at all it would be, and asking again would be right).
        reports = await asyncio.gather(
            *[services.payments.reconcile(every=timedelta(minutes=1), batch=2) for _ in range(6)]
        )
        assert sum(r.checked for r in reports) == 6
        assert web.payments.get_calls == 6
    finally:
        await web.app.extensions["rose_cart"].aclose()
