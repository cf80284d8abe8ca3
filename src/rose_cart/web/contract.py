"""The JSON API's contract, in one place: decorators that validate requests and shape
responses with the models of ``api_models``, and the OpenAPI document generated from those
same decorators by quart-schema, so the document cannot say anything the code does not do.

The decorators record what they use where quart-schema's document generator reads it;
validation errors become this service's error body (``invalid_request`` naming the field,
or the field's own code: ``invalid_quantity``, ``quantity_too_large``, ``invalid_amount``,
``invalid_idempotency_key``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from quart import Quart, Response, current_app, request
from quart_schema import Info, QuartSchema, RequestSchemaValidationError
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import (
    QUART_SCHEMA_HEADERS_ATTRIBUTE,
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
    QUART_SCHEMA_RESPONSE_ATTRIBUTE,
    DataSource,
)
from werkzeug.routing import Rule

from rose_cart.domain.cart import HARD_MAX_PER_LINE
from rose_cart.domain.errors import (
    CartError,
    InvalidAmount,
    InvalidIdempotencyKey,
    InvalidQuantity,
    InvalidRequest,
    QuantityTooLarge,
)
from rose_cart.web.api_models import Error
from rose_cart.web.bodies import json_object
from rose_cart.web.errors import render_error

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
M = TypeVar("M", bound=BaseModel)

API_PREFIX = "/api/v1/"
DOCUMENT_PATH = "/api/v1/openapi.json"
#: Where the decorators note what the document says besides quart-schema's own records.
_ERRORS_ATTRIBUTE = "_rose_cart_error_codes"
_OPTIONAL_BODY_ATTRIBUTE = "_rose_cart_optional_body"
#: Header fields as clients spell them.
_HEADER_NAMES = {"idempotency_key": "Idempotency-Key"}

# ------------------------------------------------------------------ validation errors


def _field_name(loc: tuple[int | str, ...], where: str) -> str:
    # The fields are flat; what follows the name is which member of a union was tried.
    path = str(loc[0]) if loc else ""
    if where == "header":
        return _HEADER_NAMES.get(path, path)
    return path or where


def invalid(exc: ValidationError, where: str = "body") -> CartError:
    """The first problem of a validation error, as the error the client is told about."""
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    field = _field_name(loc, where)
    name = str(loc[0]) if loc else ""
    kind = str(first.get("type", ""))
    if kind == "missing":
        return InvalidRequest(f"Give {field}.", field=field)
    if name == "quantity":
        if kind == "less_than_equal":
            return QuantityTooLarge(
                f"A line holds at most {HARD_MAX_PER_LINE}.",
                field=field,
                maximum=HARD_MAX_PER_LINE,
            )
        return InvalidQuantity(field=field)
    if name == "amount":
        return InvalidAmount(field=field)
    if name == "idempotency_key":
        return InvalidIdempotencyKey(field=field)
    return InvalidRequest(f"{field}: {first.get('msg', 'not valid')}.", field=field)


def _load(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, where) from None


# ------------------------------------------------------------------ decorators


def body(model: type[BaseModel], *, optional: bool = False) -> Callable[[F], F]:
    """The JSON body, validated with ``model``, as the handler's ``data`` argument. With
    ``optional``, no body is the same as ``{}``."""

    def decorator(func: F) -> F:
        setattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, (model, DataSource.JSON))
        setattr(func, _OPTIONAL_BODY_ATTRIBUTE, optional)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            raw = await request.get_data(as_text=False)
            if not raw and not optional:
                raise InvalidRequest("Send a JSON object as the body.", field="body")
            return await func(*args, data=_load(model, await json_object(), "body"), **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def query(model: type[BaseModel]) -> Callable[[F], F]:
    """The query string, validated with ``model``, as the handler's ``query`` argument."""

    def decorator(func: F) -> F:
        setattr(func, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, model)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            # An empty parameter (a form's blank field) is the same as none.
            values = {key: value for key, value in request.args.items() if value != ""}
            return await func(*args, query=_load(model, values, "query"), **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def headers(model: type[BaseModel]) -> Callable[[F], F]:
    """The request headers ``model`` names, validated, as the handler's ``headers``."""
    names = {field: _HEADER_NAMES.get(field, field) for field in model.model_fields}

    def decorator(func: F) -> F:
        setattr(func, QUART_SCHEMA_HEADERS_ATTRIBUTE, model)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {
                field: request.headers.get(name)
                for field, name in names.items()
                if name in request.headers
            }
            return await func(*args, headers=_load(model, values, "header"), **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def returns(model: Any, status: int = 200) -> Callable[[F], F]:
    """Shape the handler's answer (a dict, or a list of them) with ``model``: exactly the
    documented keys, or a 500 in the tests rather than an undocumented answer."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)

    def decorator(func: F) -> F:
        documented = dict(getattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {}))
        documented[status] = (model, None)
        setattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, documented)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Response:
            value = await func(*args, **kwargs)
            # Written as JSON by the model's own serialiser: one pass, no second encoder.
            shaped = adapter.dump_json(adapter.validate_python(value), exclude_unset=True)
            return Response(shaped, status=status, mimetype="application/json")

        return wrapper  # type: ignore[return-value]

    return decorator


def errors(*kinds: type[CartError]) -> Callable[[F], F]:
    """Document the errors this route answers with (their status and stable code)."""

    def decorator(func: F) -> F:
        codes: dict[int, list[str]] = {}
        for kind in kinds:
            codes.setdefault(kind.status, [])
            if kind.code not in codes[kind.status]:
                codes[kind.status].append(kind.code)
        setattr(func, _ERRORS_ATTRIBUTE, codes)
        return func

    return decorator


# ------------------------------------------------------------------ the document


class CartOpenAPI(OpenAPIProvider):
    """quart-schema's generator, for the JSON API's routes only, with the error answers
    and the details quart-schema has no decorator for."""

    def generate_rules(self) -> Iterable[Rule]:
        for rule in super().generate_rules():
            if rule.rule.startswith(API_PREFIX) and rule.rule != DOCUMENT_PATH:
                yield rule

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name.endswith("_id"):
            # Routed as text, so anything else is that thing's 404, not the router's.
            parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameter

    def build_headers_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        parameters, components = super().build_headers_parameters(model)
        for parameter in parameters:
            field = parameter["name"].replace("-", "_")
            parameter["name"] = _HEADER_NAMES.get(field, parameter["name"])
        return parameters, components

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        error_codes: dict[int, list[str]] = getattr(func, _ERRORS_ATTRIBUTE, {})
        optional = getattr(func, _OPTIONAL_BODY_ATTRIBUTE, False)
        error_schema = {"$ref": "#/components/schemas/Error"}
        for operations in paths.values():
            for method, operation in list(operations.items()):
                operation = operations[method] = {
                    **operation,
                    "responses": {str(k): v for k, v in operation["responses"].items()},
                }
                if "requestBody" in operation:
                    operation["requestBody"] = {
                        **operation["requestBody"],
                        "required": not optional,
                    }
                for status, codes in sorted(error_codes.items()):
                    operation["responses"][str(status)] = {
                        "description": ", ".join(codes),
                        "content": {"application/json": {"schema": error_schema}},
                    }
                for status, response in operation["responses"].items():
                    if not response.get("description"):
                        response["description"] = f"HTTP {status}"
                if not operation["parameters"]:
                    del operation["parameters"]
                description = str(operation.pop("description", "") or "").strip()
                if description:
                    operation["description"] = description
        return paths, components

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        document["paths"] = dict(sorted(document["paths"].items()))
        error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
        document["components"]["schemas"].update(error.pop("$defs"))
        document["components"]["schemas"]["Error"] = error
        _drop_null_defaults(document)
        return document


def _drop_null_defaults(node: Any) -> None:
    """An optional key is left out, never null: ``"default": null`` would say otherwise."""
    if isinstance(node, dict):
        if node.get("default", ...) is None:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


INFO = Info(
    title="Rose Ash cart API",
    version="1.0.0",
    description=(
        "Cart, checkout and orders of the Rose Ash co-op. Uses the same session cookie as "
        "the web pages. Bodies must be JSON objects (Content-Type: application/json); "
        "requests from another site's Origin are refused. Quantities and ids are JSON "
        "integers; money is a decimal string. Every error is "
        '{"error": {"code", "message"}} with a stable code.'
    ),
)


def install_contract(app: Quart) -> None:
    """Make the document of the API's routes servable (``openapi_document``) and map
    quart-schema's own validation errors to this service's error body."""
    extension = QuartSchema(openapi_path=None, info=INFO)
    app.config.setdefault("QUART_SCHEMA_CONVERSION_PREFERENCE", "pydantic")
    app.config.setdefault("QUART_SCHEMA_CONVERT_CASING", False)
    app.extensions["rose_cart_openapi"] = CartOpenAPI(app, extension)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(exc: RequestSchemaValidationError) -> Response:
        error = exc.validation_error
        mapped = invalid(error) if isinstance(error, ValidationError) else InvalidRequest()
        return await render_error(mapped.status, mapped.code, mapped.message, mapped.details)


def openapi_document_of(app: Quart) -> dict[str, Any]:
    provider: CartOpenAPI = app.extensions["rose_cart_openapi"]
    return provider.schema()


def openapi_document() -> dict[str, Any]:
    return openapi_document_of(current_app)
