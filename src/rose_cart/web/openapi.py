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
        "entry_id": {"type": "integer", "description": "Bookings and tickets: the event"},
        "ticket_type_id": {
            "type": "integer",
            "description": "Tickets: one line per ticket type, its quantity the number held",
        },
        "start_at": {"type": "string", "format": "date-time", "description": "Bookings"},
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

_ENTRY_ID = {
    "name": "entry_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
    "description": "The booked calendar entry",
}

_TICKET_TYPE_ID = {
    "name": "ticket_type_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}

_ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "integer"}}

_ORDER_SUMMARY = {
    "type": "object",
    "required": ["id", "status", "total", "currency", "created_at", "paid_at", "page"],
    "properties": {
        "id": {"type": "integer"},
        "status": {
            "type": "string",
            "enum": [
                "claiming",
                "pending",
                "failed",
                "paid",
                "expired",
                "cancelled",
                "refunded",
                "partially_refunded",
            ],
        },
        "total": _MONEY,
        "currency": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "paid_at": {"type": "string", "format": "date-time", "nullable": True},
        "page": _PAGE,
        "needs_refund": {
            "type": "boolean",
            "description": "Paid, but the payer is owed a refund (a person at the co-op acts)",
        },
        "refunded": _MONEY,
    },
}

_REFUNDS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "amount": _MONEY,
            "status": {"type": "string", "enum": ["done", "unconfirmed", "requested", "failed"]},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
}

_ORDER = {
    "allOf": [
        {"$ref": "#/components/schemas/OrderSummary"},
        {"type": "object", "properties": {"refunds": _REFUNDS}},
        {
            "type": "object",
            "required": ["items", "bookings", "tickets", "payments", "refunds"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "product_id": {"type": "integer"},
                            "title": {"type": "string"},
                            "quantity": {"type": "integer"},
                            "unit_price": _MONEY,
                            "line_total": _MONEY,
                        },
                    },
                },
                "bookings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "entry_id": {"type": "integer"},
                            "title": {"type": "string"},
                            "start_at": {"type": "string"},
                            "state": {"type": "string"},
                        },
                    },
                },
                "tickets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "ticket_id": {"type": "integer"},
                            "entry_id": {"type": "integer"},
                            "ticket_type": {"type": "string"},
                            "state": {"type": "string"},
                        },
                    },
                },
                "payments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "status": {"type": "string"},
                            "amount": _MONEY,
                            "provider_checkout_id": {"type": "string", "nullable": True},
                            "created_at": {"type": "string", "format": "date-time"},
                        },
                    },
                },
            },
        },
    ]
}

_CHECKOUT_RESULT = {
    "type": "object",
    "required": ["order_id", "status", "total", "currency", "payment_url"],
    "properties": {
        "order_id": {"type": "integer"},
        "status": {"type": "string"},
        "total": _MONEY,
        "currency": {"type": "string"},
        "payment_url": {"type": "string", "description": "SumUp's hosted payment page"},
    },
}

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
    "/api/v1/cart/bookings/{entry_id}": {
        "delete": {
            "summary": "Take a booking out of the cart (entry_not_found when it is not in it)",
            "parameters": [_ENTRY_ID],
            "responses": {
                **_ok(200, "Cart", "The cart after the removal"),
                **_errors(403, 404, 503),
            },
        },
    },
    "/api/v1/cart/tickets/{ticket_type_id}": {
        "patch": {
            "summary": "Set how many tickets of a type already in the cart it holds (0 removes "
            "them); sold_out, with the events service's message, when fewer are left",
            "parameters": [_TICKET_TYPE_ID],
            "requestBody": _body(
                {"quantity": {"type": "integer", "minimum": 0, "maximum": 99}}, ["quantity"]
            ),
            "responses": {
                **_ok(200, "Cart", "The cart after the change"),
                **_errors(400, 403, 404, 409, 415, 503),
            },
        },
        "delete": {
            "summary": "Take a ticket type's tickets out of the cart",
            "parameters": [_TICKET_TYPE_ID],
            "responses": {
                **_ok(200, "Cart", "The cart after the removal"),
                **_errors(403, 404, 503),
            },
        },
    },
    "/api/v1/checkout": {
        "post": {
            "summary": "Check out the cart (one page's lines, or the whole cart if it holds "
            "one page's lines) and get SumUp's payment page",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 8, "maxLength": 128},
                    "description": "The same key gives the same order",
                }
            ],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"page_slug": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                **_ok(201, "CheckoutResult", "The order and where to pay"),
                **_errors(400, 403, 404, 409, 415, 502, 503),
            },
        },
    },
    "/api/v1/orders": {
        "get": {
            "summary": "The visitor's orders, newest first",
            "responses": {
                "200": {
                    "description": "Orders",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/OrderSummary"},
                            }
                        }
                    },
                }
            },
        },
    },
    "/api/v1/orders/{order_id}": {
        "get": {
            "summary": "One of the visitor's orders",
            "parameters": [_ORDER_ID],
            "responses": {**_ok(200, "Order", "The order"), **_errors(404)},
        },
    },
    "/api/v1/orders/{order_id}/check": {
        "post": {
            "summary": "Ask SumUp again about the order's payment",
            "parameters": [_ORDER_ID],
            "responses": {
                **_ok(200, "Order", "The order after checking"),
                **_errors(403, 404, 502),
            },
        },
    },
    "/api/v1/admin/orders": {
        "get": {
            "summary": "Every order, for admins (anyone else: 404)",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string"}},
                {"name": "page_slug", "in": "query", "schema": {"type": "string"}},
                {"name": "needs_attention", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {
                "200": {
                    "description": "Orders, newest first",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/OrderSummary"},
                            }
                        }
                    },
                },
                **_errors(404),
            },
        },
    },
    "/api/v1/admin/orders/{order_id}": {
        "get": {
            "summary": "One order with its payments, refunds, activities and commands (admins)",
            "parameters": [_ORDER_ID],
            "responses": {**_ok(200, "Order", "The order"), **_errors(404)},
        },
    },
    "/api/v1/admin/orders/{order_id}/refund": {
        "post": {
            "summary": "Refund a paid order through SumUp, all that is left or an amount (admins)",
            "parameters": [_ORDER_ID],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"amount": _MONEY}}
                    }
                },
            },
            "responses": {
                **_ok(200, "Order", "The order after the refund"),
                **_errors(400, 403, 404, 409, 415, 502),
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

SCHEMAS: dict[str, Any] = {
    "Error": _ERROR,
    "Cart": _CART,
    "CartLine": _LINE,
    "OrderSummary": _ORDER_SUMMARY,
    "Order": _ORDER,
    "CheckoutResult": _CHECKOUT_RESULT,
}


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
