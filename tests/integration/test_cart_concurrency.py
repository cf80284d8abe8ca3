"""Concurrent adds on PostgreSQL: the requests run at the same time on separate connections."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from rose_cart.adapters.db.tables import cart_items
from tests.web.conftest import TOKEN, make_web


async def _live_rows(web_app: object, product_id: int) -> int:
    engine = web_app.extensions["rose_cart"].cart.uow.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        result = await conn.execute(
            select(func.count())
            .select_from(cart_items)
            .where(cart_items.c.product_id == product_id, cart_items.c.deleted_at.is_(None))
        )
        return int(result.scalar_one())


async def test_two_concurrent_first_adds_make_one_line(postgres_url: str) -> None:
    web = make_web(postgres_url)
    try:
        async with web.client.session_transaction() as session:
            session["csrf"] = TOKEN
            session["sid"] = "concurrent-visitor-0000000000"
        responses = await asyncio.gather(
            *[
                web.client.post(
                    "/cart/add/", form={"csrf_token": TOKEN, "product_id": "4", "quantity": str(q)}
                )
                for q in (2, 3)
            ]
        )
        assert [r.status_code for r in responses] == [303, 303]
        assert await web.quantities() == {4: 5}
        assert await _live_rows(web.app, 4) == 1
    finally:
        await web.app.extensions["rose_cart"].aclose()


async def test_twenty_concurrent_adds_all_count(postgres_url: str) -> None:
    web = make_web(postgres_url)
    try:
        await web.login("dora")
        responses = await asyncio.gather(
            *[
                web.client.post("/api/v1/cart/items", json={"product_id": 4, "quantity": 1})
                for _ in range(20)
            ]
        )
        assert all(r.status_code == 201 for r in responses)
        assert await web.quantities() == {4: 20}
        assert await _live_rows(web.app, 4) == 1
    finally:
        await web.app.extensions["rose_cart"].aclose()


async def test_concurrent_adds_never_pass_the_line_maximum(postgres_url: str) -> None:
    web = make_web(postgres_url)
    try:
        await web.login("erin")
        responses = await asyncio.gather(
            *[
                web.client.post("/api/v1/cart/items", json={"product_id": 8, "quantity": 1})
                for _ in range(12)
            ]
        )
        codes = sorted(r.status_code for r in responses)
        assert codes.count(201) == 5 and codes.count(409) == 7  # eggs: at most 5
        assert await web.quantities() == {8: 5}
    finally:
        await web.app.extensions["rose_cart"].aclose()
