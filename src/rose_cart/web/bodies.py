"""Reading JSON bodies: whatever a client sends, an unreadable body is a 400, never a 500."""

from __future__ import annotations

import json
import re
from typing import Any

from quart import request

from rose_cart.domain.errors import BadInput


class InvalidJson(BadInput):
    code = "invalid_json"
    message = "The body must be a JSON object."


#: An escaped UTF-16 surrogate: only then can a decoded string hold one on its own.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON (UTF-8, no NaN or Infinity, no lone surrogates), else InvalidJson.

    Nesting deeper than Python can decode is refused the same way.
    """
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise InvalidJson("The body is not valid UTF-8.") from exc
    except RecursionError as exc:
        raise InvalidJson("The body is nested too deeply.") from exc
    except ValueError as exc:
        raise InvalidJson("The body is not valid JSON.") from exc
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise InvalidJson("The body holds text that is not valid Unicode.")
    return value


async def _body() -> bytes:
    raw = await request.get_data(as_text=False)
    return raw if isinstance(raw, bytes) else raw.encode()


async def read_json() -> Any:
    """The request body as JSON, or None when there is no body."""
    body = await _body()
    return parse_json(body) if body else None


async def json_object() -> dict[str, Any]:
    """The body as a JSON object; no body is an empty one."""
    body = await _body()
    if not body:
        return {}
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidJson()
    return data
