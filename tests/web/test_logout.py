"""Logging out ends the login: a cookie kept from before is worth nothing, on any worker."""

from __future__ import annotations

from typing import Any

import pytest

from rose_cart.adapters.cache import RedisCache
from rose_cart.bootstrap import Overrides
from tests.web.conftest import TOKEN, Web


async def cookie_of(web: Web) -> str:
    """The session cookie as the browser holds it now (what someone could copy)."""
    jar = web.client.cookie_jar
    assert jar is not None
    [cookie] = [c for c in jar if c.name == "rose_session"]
    return str(cookie.value)


def with_cookie(web: Web, cookie: str) -> Any:
    client = web.app.test_client()
    client.set_cookie("localhost", "rose_session", cookie)
    return client


async def test_a_cookie_kept_from_before_logout_no_longer_shows_the_cart(web: Web) -> None:
    uid = await web.login("alice")
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    kept = await cookie_of(web)
    replay = with_cookie(web, kept)
    assert (await (await replay.get("/api/v1/cart")).get_json())["user_id"] == uid

    assert (await web.client.post("/auth/logout", json={})).status_code == 200

    for client in (replay, web.client):
        cart = await (await client.get("/api/v1/cart")).get_json()
        assert cart["user_id"] is None and cart["count"] == 0
        assert await (await client.get("/api/v1/orders")).get_json() == []
        summary = await (await client.get("/internal/cart/summary")).get_json()
        assert summary["count"] == 0
        page = (await (await client.get("/cart/")).get_data()).decode()
        assert "Sourdough" not in page
    # Adding with the old cookie goes to an anonymous cart, never to Alice's.
    await replay.post("/api/v1/cart/items", json={"product_id": 2})
    await web.login("alice")
    assert await web.quantities() == {1: 2}


async def test_logging_in_again_does_not_bring_an_old_cookie_back(web: Web) -> None:
    await web.login("alice")
    kept = await cookie_of(web)
    await web.client.post("/auth/logout", json={})
    uid = await web.login("alice")
    assert (await web.cart())["user_id"] == uid
    assert (await (await with_cookie(web, kept).get("/api/v1/cart")).get_json())["user_id"] is None


async def test_a_login_on_another_device_stays_until_the_user_logs_out(web: Web) -> None:
    phone = Web(web.app, web.app.test_client(), web.market, web.clock, web.payments)
    uid = await web.login("alice")
    assert await phone.login("alice") == uid
    assert (await phone.cart())["user_id"] == uid
    assert (await web.cart())["user_id"] == uid  # the second login did not end the first
    await phone.client.post("/auth/logout", json={})
    assert (await web.cart())["user_id"] is None


async def csrf_of(web: Web) -> str | None:
    async with web.client.session_transaction() as session:
        token = session.get("csrf")
    return None if token is None else str(token)


async def test_the_csrf_token_changes_at_login_and_at_logout(web: Web) -> None:
    await web.client.get("/cart/")  # a page with forms: the visitor gets a token
    before = await csrf_of(web)
    assert before
    response = await web.client.post(
        "/auth/dev-login", form={"csrf_token": before, "username": "alice"}
    )
    assert response.status_code == 303
    await web.client.get("/cart/")
    during = await csrf_of(web)
    assert during and during != before
    refused = await web.client.post("/cart/add/", form={"csrf_token": before, "product_id": "1"})
    assert refused.status_code == 400
    response = await web.client.post("/auth/logout", form={"csrf_token": during})
    assert response.status_code == 303
    await web.client.get("/cart/")
    after = await csrf_of(web)
    assert after and after not in {before, during}
    refused = await web.client.post("/cart/add/", form={"csrf_token": during, "product_id": "1"})
    assert refused.status_code == 400


async def test_a_cookie_from_before_login_generations_is_logged_out(web: Web) -> None:
    # A cookie signed by this service but without a login generation (made before logouts
    # ended logins, or by hand) is not logged in.
    async with web.client.session_transaction() as session:
        session["uid"] = 4242
        session["username"] = "mallory"
        session["csrf"] = TOKEN
    cart = await web.cart()
    assert cart["user_id"] is None


async def _worker(database_url: str, cache: RedisCache) -> Web:
    from rose_cart.app import create_app
    from rose_cart.config import Settings
    from rose_cart.standalone.siblings import (
        EmptyCalendar,
        ReferenceBlog,
        ReferenceMarket,
        ReferenceSubscriber,
    )
    from tests.fakes import FakeClock, FakePaymentProvider

    market, clock, payments = ReferenceMarket(), FakeClock(), FakePaymentProvider()
    app = create_app(
        Settings(database_url=database_url, migrate_on_start=False, run_reconciler=False),
        Overrides(
            market=market,
            blog=ReferenceBlog(),
            calendar=EmptyCalendar(),
            clock=clock,
            payments=payments,
            subscriber=ReferenceSubscriber(),
            cache=cache,
        ),
    )
    return Web(app, app.test_client(), market, clock, payments)


@pytest.mark.redis
async def test_a_logout_on_one_worker_ends_the_login_on_every_worker(
    database_url: str, redis_url: str
) -> None:
    # Each worker has its own Redis client of the same Redis, as separate processes do.
    caches = [RedisCache(redis_url), RedisCache(redis_url)]
    one, other = await _worker(database_url, caches[0]), await _worker(database_url, caches[1])
    try:
        async with one.app.app_context():
            uid = await one.login("alice")
            kept = await cookie_of(one)
        async with other.app.app_context():
            replay = with_cookie(other, kept)
            assert (await (await replay.get("/api/v1/cart")).get_json())["user_id"] == uid
        async with one.app.app_context():
            await one.client.post("/auth/logout", json={})
        async with other.app.app_context():
            assert (await (await replay.get("/api/v1/cart")).get_json())["user_id"] is None
    finally:
        for w in (one, other):
            await w.app.extensions["rose_cart"].aclose()
        for cache in caches:
            await cache.aclose()
