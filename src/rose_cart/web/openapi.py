"""The OpenAPI document of the JSON API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

_MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "example": "4.50"}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}

_LINE = {
    "type": "object",
    "required": ["kind", "title", "quantity", "unit_price", "line_total", "currency"],
    "properties": {
        "kind": {"type": "string", "enum": ["product", "booking", "ticket"]},
        "title": {"type": "string"},
        "quantity": {"type": "integer"},
        "unit_price": _MONEY,
        "line_total": _MONEY,
        "currency": {"type": "string"},
        "product_id": {"type": "integer"},
        "available": {"type": "boolean"},
        "entry_id": {"type": "integer"},
        "ticket_type_id": {"type": "integer"},
        "start_at": {"type": "string", "format": "date-time"},
    },
}

_PAGE = {
    "type": "object",
    "nullable": True,
    "properties": {
        "id": {"type": "integer"},
        "slug": {"type": "string"},
        "title": {"type": "string"},
    },
}

_CART = {
    "type": "object",
    "required": ["count", "total", "currency", "user_id", "groups"],
    "properties": {
        "count": {"type": "integer"},
        "total": {**_MONEY, "nullable": True},
        "currency": {"type": "string", "nullable": True},
        "totals": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"currency": {"type": "string"}, "total": _MONEY},
            },
        },
        "user_id": {"type": "integer", "nullable": True},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["page", "count", "total", "checkout_url", "lines"],
                "properties": {
                    "page": _PAGE,
                    "count": {"type": "integer"},
                    "total": {**_MONEY, "nullable": True},
                    "currency": {"type": "string", "nullable": True},
                    "checkout_url": {"type": "string"},
                    "lines": {"type": "array", "items": _LINE},
                },
            },
        },
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad input",
        401: "Login required",
        403: "Cross-site request refused",
        404: "Not found (or not yours)",
        409: "Conflict",
        415: "Body must be JSON",
        502: "Payment provider failed",
        503: "A service is unavailable",
    }
    return {
        str(s): {
            "description": text[s],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


def _ok(status: int, schema: str, description: str) -> dict[str, Any]:
    return {
        str(status): {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": required, "properties": properties}
            }
        },
    }


_PRODUCT_ID = {"name": "product_id", "in": "path", "required": True, "schema": {"type": "integer"}}

PATHS: dict[str, Any] = {
    "/api/v1/cart": {
        "get": {
            "summary": "The visitor's cart, grouped by page",
            "responses": {**_ok(200, "Cart", "The cart"), **_errors(503)},
        },
    },
    "/api/v1/cart/items": {
        "post": {
            "summary": "Add a product (adds to an existing line)",
            "requestBody": _body(
                {
                    "product_id": {"type": "integer"},
                    "quantity": {"type": "integer", "minimum": 1, "default": 1},
                },
                ["product_id"],
            ),
            "responses": {
                **_ok(201, "Cart", "The cart after the add"),
                **_errors(400, 403, 404, 409, 415, 503),
            },
        },
    },
    "/api/v1/cart/items/{product_id}": {
        "patch": {
            "summary": "Set a line's quantity (0 removes it)",
            "parameters": [_PRODUCT_ID],
            "requestBody": _body({"quantity": {"type": "integer", "minimum": 0}}, ["quantity"]),
            "responses": {
                **_ok(200, "Cart", "The cart after the change"),
                **_errors(400, 403, 404, 415, 503),
            },
        },
        "delete": {
            "summary": "Remove a line",
            "parameters": [_PRODUCT_ID],
            "responses": {
                **_ok(200, "Cart", "The cart after the removal"),
                **_errors(403, 404, 503),
            },
        },
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.0 document"}},
        },
    },
}

SCHEMAS: dict[str, Any] = {"Error": _ERROR, "Cart": _CART, "CartLine": _LINE}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Rose Ash cart API",
            "version": "1.0.0",
            "description": (
                "Cart, checkout and orders of the Rose Ash co-op. Uses the same session "
                "cookie as the web pages. Bodies must be JSON; cross-site requests are "
                "refused. Money is a decimal string."
            ),
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
