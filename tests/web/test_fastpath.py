"""The summary and cart-mini answered before Quart: the same answers as the views give, and
every case that needs the views still reaches them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rose_cart.web.fastpath import CART_MINI_PATH, SUMMARY_PATH
from tests.web.conftest import Web
from tests.web.test_logout import cookie_of, with_cookie

VIEWS = {SUMMARY_PATH: "internal.summary", CART_MINI_PATH: "internal.cart_mini"}


class ViewCalls:
    """Counts the calls that reached the Quart views."""

    def __init__(self, web: Web) -> None:
        self.calls: dict[str, int] = {}
        for path, endpoint in VIEWS.items():
            view = web.app.view_functions[endpoint]
            web.app.view_functions[endpoint] = self._counting(path, view)

    def _counting(
        self, path: str, view: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[path] = self.calls.get(path, 0) + 1
            return await view(*args, **kwargs)

        return counted

    def reached(self, path: str) -> int:
        return self.calls.pop(path, 0)


def comparable(response: Any) -> tuple[int, dict[str, str]]:
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}


@pytest.mark.parametrize("path", [SUMMARY_PATH, CART_MINI_PATH])
async def test_a_known_visitors_cache_hit_is_the_views_answer_without_the_view(
    web: Web, path: str
) -> None:
    views = ViewCalls(web)
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})

    first = await web.client.get(path)  # the view renders it (and remembers the cookie)
    assert views.reached(path) == 1
    second = await web.client.get(path)
    assert views.reached(path) == 0
    assert comparable(second) == comparable(first)
    assert await second.get_data() == await first.get_data()
    assert "Set-Cookie" not in second.headers
    if path == SUMMARY_PATH:
        assert (await second.get_json())["count"] == 2


async def test_a_change_shows_at_once_on_the_fast_path(web: Web) -> None:
    views = ViewCalls(web)
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    await web.client.get(SUMMARY_PATH)
    views.reached(SUMMARY_PATH)

    await web.client.post("/api/v1/cart/items", json={"product_id": 2, "quantity": 3})
    summary = await (await web.client.get(SUMMARY_PATH)).get_json()
    assert summary["count"] == 5
    assert views.reached(SUMMARY_PATH) == 0
    mini = (await (await web.client.get(CART_MINI_PATH)).get_data()).decode()
    assert "5" in mini


async def test_a_logged_in_visitor_is_served_until_their_login_ends(web: Web) -> None:
    views = ViewCalls(web)
    uid = await web.login("alice")
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    kept = await cookie_of(web)
    replay = with_cookie(web, kept)
    await replay.get(SUMMARY_PATH)
    views.reached(SUMMARY_PATH)
    assert (await (await replay.get(SUMMARY_PATH)).get_json())["count"] == 2
    assert views.reached(SUMMARY_PATH) == 0

    await web.app.extensions["rose_cart"].logins.end(uid)  # a logout on another device

    answer = await replay.get(SUMMARY_PATH)
    assert (await answer.get_json())["count"] == 0
    assert views.reached(SUMMARY_PATH) == 1  # the hooks took the login out of the cookie
    assert "Set-Cookie" in answer.headers


async def test_a_cookie_with_an_adoption_due_goes_to_the_hooks(web: Web) -> None:
    views = ViewCalls(web)
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    await web.client.get(SUMMARY_PATH)
    await web.client.get(SUMMARY_PATH)
    views.reached(SUMMARY_PATH)
    async with web.client.session_transaction() as session:
        session["uid"] = 7  # as a login leaves it, with the anonymous cart still named
        session["login"] = await web.app.extensions["rose_cart"].logins.start(7)
    summary = await (await web.client.get(SUMMARY_PATH)).get_json()
    assert summary["count"] == 2  # adopted into user 7's cart
    assert views.reached(SUMMARY_PATH) == 1
    async with web.client.session_transaction() as session:
        assert "sid" not in session


async def test_a_changed_secret_key_forgets_every_remembered_cookie(web: Web) -> None:
    views = ViewCalls(web)
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    await web.client.get(SUMMARY_PATH)
    views.reached(SUMMARY_PATH)

    web.app.secret_key = "another-secret-key-entirely-0123456789"
    summary = await (await web.client.get(SUMMARY_PATH)).get_json()
    assert summary["count"] == 0  # the old cookie's signature no longer holds
    assert views.reached(SUMMARY_PATH) == 1


async def test_a_query_string_or_another_method_goes_to_quart(web: Web) -> None:
    views = ViewCalls(web)
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    await web.client.get(SUMMARY_PATH)
    views.reached(SUMMARY_PATH)
    assert (await web.client.get(SUMMARY_PATH + "?session_id=x")).status_code == 401
    assert views.reached(SUMMARY_PATH) == 1  # the view asks for the signature
    assert (await web.client.post(SUMMARY_PATH)).status_code == 405


async def test_a_failing_cache_read_is_left_to_the_view(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = ViewCalls(web)
    await web.client.post("/api/v1/cart/items", json={"product_id": 1, "quantity": 2})
    await web.client.get(SUMMARY_PATH)
    views.reached(SUMMARY_PATH)
    cart = web.app.extensions["rose_cart"].cart
    real = cart.summary_json
    calls = 0

    async def fails_once(identity: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the cache broke mid-answer")
        return await real(identity)

    monkeypatch.setattr(cart, "summary_json", fails_once)
    answer = await web.client.get(SUMMARY_PATH)
    assert answer.status_code == 200 and (await answer.get_json())["count"] == 2
    assert views.reached(SUMMARY_PATH) == 1


async def test_no_cookie_is_an_empty_summary(web: Web) -> None:
    answer = await web.app.test_client().get(SUMMARY_PATH)
    assert answer.status_code == 200
    assert (await answer.get_json())["count"] == 0
    assert "Set-Cookie" not in answer.headers
