"""Quart's HTTP connection, with less machinery per request.

For every request Quart starts a task that reads the body and another that answers, waits
for the first of them to end, then sends the answer from a third task bounded by
``RESPONSE_TIMEOUT``, as a body message and an empty closing one. For a request whose body
came whole with its first message (a GET, and every form and JSON body here, which are at
most 64 KB) none of that is needed: the answer is made in the server's own task and, when
it is held in memory, sent as one message (the server buffers it; there is nothing to time
out). Anything else (a body in several messages, a streamed answer) goes Quart's way.

A visitor who goes away in the middle of such a request no longer cancels it: it runs to
its end, as every statement already did (they are shielded from cancellation), and the
server drops the answer.

Such a request's body is read without a timed wait as well (``LeanRequest``): Quart waits
for every body, even one already whole, under ``BODY_TIMEOUT`` in a task of its own.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any, cast

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart.asgi import ASGIHTTPConnection, _handle_exception
from quart.utils import encode_headers
from quart.wrappers import Request
from quart.wrappers.response import DataBody, Response


class LeanRequest(Request):
    """Quart's request. A body that came whole (``whole``) is handed over as it is; any
    other is waited for as Quart does, under ``BODY_TIMEOUT``."""

    whole: bytes | None = None

    async def get_data(  # type: ignore[override]
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> str | bytes:
        data = self.whole
        if data is None or parse_form_data:
            return await super().get_data(cache, as_text, parse_form_data)
        if not cache:
            self.whole = b""
            self.body.clear()
        return data.decode() if as_text else data

    async def _load_form_data(self) -> None:
        if self.whole is None:
            await super()._load_form_data()
            return
        async with self._parsing_lock:  # parsed once, as Quart does
            if self._form is None:
                parser = self.make_form_data_parser()
                self._form, self._files = await parser.parse(
                    self.body, self.mimetype, self.content_length, self.mimetype_params
                )


class LeanHTTPConnection(ASGIHTTPConnection):
    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        first = cast(dict[str, Any], await receive())
        if first["type"] != "http.request" or first.get("more_body", False):
            await super().__call__(_replay(first, receive), send)
            return
        request = self._create_request_from_scope(send)
        data = first.get("body", b"")
        request.body.append(data)
        request.body.set_complete()
        limit = request.max_content_length
        # Over the limit (as sent or as said), it is left to Quart, which refuses it.
        if isinstance(request, LeanRequest) and (
            limit is None or max(len(data), request.content_length or 0) <= limit
        ):
            request.whole = data
        await self._answer(request, send)

    async def _answer(self, request: Request, send: ASGISendCallable) -> None:
        try:
            response = await self.app.handle_request(request)
        except Exception as error:  # as Quart answers what its own handling let through
            response = await _handle_exception(self.app, error)
        body = response.response if isinstance(response, Response) else None
        if not isinstance(body, DataBody):  # a file or a stream: Quart's way
            timeout = getattr(response, "timeout", Ellipsis)
            if timeout is Ellipsis:
                timeout = self.app.config["RESPONSE_TIMEOUT"]
            with suppress(TimeoutError):
                await asyncio.wait_for(self._send_response(send, response), timeout=timeout)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": encode_headers(response.headers),
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": body.data[body.begin : body.end],
                "more_body": False,
            }
        )


def _replay(first: dict[str, Any], receive: ASGIReceiveCallable) -> ASGIReceiveCallable:
    """``receive``, giving back the message already taken first."""
    pending: list[dict[str, Any]] = [first]

    async def again() -> Any:
        if pending:
            return pending.pop()
        return await receive()

    return again
