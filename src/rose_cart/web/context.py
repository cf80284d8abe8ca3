"""Per-request helpers: the services, the visitor's identity, CSRF tokens."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any, cast

from quart import current_app, request, session

from rose_cart.domain.errors import CsrfFailed
from rose_cart.domain.identity import CartIdentity
from rose_cart.services.admin import Admin
from rose_cart.services.container import Services


def services() -> Services:
    return cast(Services, current_app.extensions["rose_cart"])


def identity() -> CartIdentity:
    """Who is asking: the logged-in user and/or the anonymous cart session."""
    return identity_of(session)


def identity_of(data: Mapping[str, Any]) -> CartIdentity:
    """The identity a session's contents name."""
    uid = data.get("uid")
    sid = data.get("sid")
    return CartIdentity(
        user_id=int(uid) if uid is not None else None, session_id=str(sid) if sid else None
    )


def admin() -> Admin:
    """The visitor as an admin would be named (whether they are one is the service's call)."""
    uid = session.get("uid")
    name = session.get("username")
    return Admin(int(uid) if uid is not None else None, str(name) if name else None)


def ensure_identity() -> CartIdentity:
    """The identity, issuing an anonymous session id the first time something is added."""
    current = identity()
    if current.user_id is None and not current.session_id:
        session["sid"] = secrets.token_urlsafe(24)
        return identity()
    return current


#: What the cookie holds about a login; all of it goes when the login has been ended.
LOGIN_KEYS = ("uid", "username", "login", "csrf")


async def check_login() -> None:
    """A cookie whose login has been ended (a logout, on any worker) is that of a visitor
    who is not logged in: its login is taken out of it."""
    uid = session.get("uid")
    if uid is None:
        return
    if not await services().logins.is_current(int(uid), session.get("login")):
        for key in LOGIN_KEYS:
            session.pop(key, None)


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


async def check_csrf() -> None:
    """Refuse a form post whose token does not match the one in the visitor's session."""
    form = await request.form
    sent = form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf")
    # As bytes: compare_digest refuses str with anything but ASCII in it.
    if not expected or not sent or not hmac.compare_digest(_utf8(sent), _utf8(expected)):
        raise CsrfFailed()


def _utf8(value: object) -> bytes:
    return str(value).encode("utf-8", "surrogatepass")
