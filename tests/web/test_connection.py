"""The app's HTTP connection answers a request whose body comes whole in one message in the
server's own task, in one body message; a body sent in several parts and a file are still
answered as Quart answers them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.web.conftest import TOKEN, Web


async def _call(web: Web, method: str, path: str, parts: list[bytes], **headers: str) -> Any:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the visitor stays
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(web.app(scope, receive, send), 10)
    return sent


async def test_a_whole_body_is_answered_in_one_message(web: Web) -> None:
    body = json.dumps({"product_id": 1, "quantity": 2}).encode()
    sent = await _call(web, "POST", "/api/v1/cart/items", [body], content_type="application/json")
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 201 and sent[1]["more_body"] is False
    assert json.loads(sent[1]["body"])["count"] == 2
    # The edge's headers are there too.
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]


async def test_a_body_in_parts_is_read_whole(web: Web) -> None:
    body = json.dumps({"product_id": 1, "quantity": 3}).encode()
    sent = await _call(
        web,
        "POST",
        "/api/v1/cart/items",
        [body[:5], body[5:9], body[9:]],
        content_type="application/json",
    )
    assert sent[0]["status"] == 201
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(answer)["count"] == 3


async def test_a_file_is_sent_whole(web: Web) -> None:
    sent = await _call(web, "GET", "/static/css/cart.css", [b""])
    assert sent[0]["status"] == 200
    css = b"".join(m.get("body", b"") for m in sent[1:])
    assert b"cart-mini" in css and sent[-1]["more_body"] is False


async def _visitor_cookie(web: Web) -> str:
    """The Cookie header of a visitor who holds one of product 2 and a CSRF token."""
    await web.client.post("/api/v1/cart/items", json={"product_id": 2, "quantity": 1})
    async with web.client.session_transaction() as session:
        session["csrf"] = TOKEN
    assert web.client.cookie_jar is not None
    return "; ".join(f"{c.name}={c.value}" for c in web.client.cookie_jar)


async def test_a_whole_form_is_read(web: Web) -> None:
    cookie = await _visitor_cookie(web)
    form = f"csrf_token={TOKEN}&product_id=1&quantity=2".encode()
    sent = await _call(
        web,
        "POST",
        "/cart/add/",
        [form],
        content_type="application/x-www-form-urlencoded",
        cookie=cookie,
    )
    assert sent[0]["status"] == 303
    assert await web.quantities() == {1: 2, 2: 1}


async def test_a_whole_body_over_the_limit_is_refused_and_adds_nothing(web: Web) -> None:
    padding = "x" * (70 * 1024)
    cookie = await _visitor_cookie(web)
    body = json.dumps({"product_id": 1, "quantity": 2, "note": padding}).encode()
    sent = await _call(
        web, "POST", "/api/v1/cart/items", [body], content_type="application/json", cookie=cookie
    )
    assert sent[0]["status"] == 413
    assert await web.quantities() == {2: 1}
