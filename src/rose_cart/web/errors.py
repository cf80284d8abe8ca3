"""One place that turns errors into HTTP answers: JSON for the API, a page for people."""

from __future__ import annotations

import logging

from quart import Quart, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from rose_cart.domain.errors import CartError

log = logging.getLogger(__name__)


def wants_json() -> bool:
    path = request.path
    return (
        path.startswith(
            ("/api/", "/internal/", "/market/api/", "/events/api/", "/checkout/webhook/")
        )
        or request.mimetype == "application/json"
        or request.accept_mimetypes.best == "application/json"
    )


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    error.update(extra)
    return {"error": error}


async def render_error(
    status: int, code: str, message: str, details: dict[str, object] | None = None
) -> Response:
    if wants_json():
        response = jsonify(error_body(code, message, **(details or {})))
    else:
        html = await render_template(
            "error.html", status=status, code=code, message=message, details=details or {}
        )
        response = Response(html, mimetype="text/html")
    response.status_code = status
    return response


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(CartError)
    async def _cart_error(exc: CartError) -> Response:
        return await render_error(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            400: "bad_request",
            415: "unsupported_media_type",
        }.get(status, "http_error")
        message = {404: "There is nothing here.", 405: "That method is not allowed here."}.get(
            status, exc.description or "That request could not be handled."
        )
        response = await render_error(status, code, message)
        # The exception's own headers say what to do next: ``Allow`` on a 405 (RFC 9110).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await render_error(
            500,
            "internal_error",
            "Something went wrong on our side. Nothing in your cart was lost; please try again.",
        )
