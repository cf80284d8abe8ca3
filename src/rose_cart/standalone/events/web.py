"""The events sibling's pages (``/events/``) and JSON API (``/events/api/``).

Bookings may be made by anyone (an anonymous visitor gets the cart's session id, as when
adding a product); tickets need a logged-in user. After every change the cart's cached
summary for the visitor is dropped: in-process here, where the real events service would
call the cart's ``cart-changed`` action.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, cast

from quart import Blueprint, Response, current_app, flash, jsonify, redirect, render_template
from quart import request as quart_request
from quart.typing import ResponseReturnValue

from rose_cart.domain.cart import parse_quantity
from rose_cart.domain.errors import (
    BadInput,
    CartError,
    EntryNotFound,
    LoginRequired,
    TicketTypeNotFound,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.ids import positive_id
from rose_cart.domain.money import Money
from rose_cart.ports import BlogService, Post
from rose_cart.standalone.events.calendar import EntryView, ReferenceCalendar
from rose_cart.standalone.events.demo import local_zone
from rose_cart.web.blueprints.api import guard
from rose_cart.web.bodies import json_object as json_body
from rose_cart.web.context import check_csrf, ensure_identity, identity, services

_TEMPLATES = str(Path(__file__).resolve().parent.parent / "templates")
bp = Blueprint("events", __name__, template_folder=_TEMPLATES)
api_bp = Blueprint("events_api", __name__, url_prefix="/events/api")
api_bp.before_request(guard)

#: Said wherever tickets are put in the cart: a claim can still fail at checkout, and a
#: payment that arrives after the tickets have gone is refunded.
REFUND_NOTE = "If the event sells out before payment, you will be refunded."


def events() -> ReferenceCalendar:
    extras = cast(dict[str, Any], current_app.extensions["rose_cart"].extras)
    return cast(ReferenceCalendar, extras["events"])


def _blog() -> BlogService:
    return cast(BlogService, current_app.extensions["rose_cart"].extras["blog"])


async def _pages(views: list[EntryView]) -> dict[int, Post]:
    ids = sorted({v.page_post_id for v in views if v.page_post_id is not None})
    return {p.id: p for p in await _blog().posts_by_ids(ids)} if ids else {}


async def upcoming_by_page(limit: int = 200) -> list[dict[str, Any]]:
    """Upcoming entries grouped by the page whose calendar they are on (pages in the order
    of their first entry; the co-op's own calendars last)."""
    views = await events().upcoming(limit)
    pages = await _pages(views)
    sections: dict[int | None, dict[str, Any]] = {}
    for view in views:
        key = view.page_post_id if view.page_post_id in pages else None
        section = sections.setdefault(key, {"page": pages.get(key) if key else None, "entries": []})
        section["entries"].append(view)
    ordered = [s for k, s in sections.items() if k is not None]
    if None in sections:
        ordered.append(sections[None])
    return ordered


def _entry_id(raw: str) -> int:
    entry_id = positive_id(raw)
    if entry_id is None:
        raise EntryNotFound()
    return entry_id


# --------------------------------------------------------------------------- formatting


def _local(moment: datetime) -> datetime:
    return moment.astimezone(local_zone())


@bp.app_template_filter("event_when")
def event_when(entry: EntryView) -> str:
    """ "Sat 28 Nov 2026, 10:00–13:00" in the co-op's own time."""
    start = _local(entry.start_at)
    text = f"{start:%a} {start.day} {start:%b %Y, %H:%M}"
    if entry.end_at is not None:
        end = _local(entry.end_at)
        text += (
            f"–{end:%H:%M}"
            if end.date() == start.date()
            else f" – {end:%a} {end.day} {end:%b, %H:%M}"
        )
    return text


@bp.app_template_filter("event_hours")
def event_hours(entry: EntryView) -> str:
    """ "10:00–13:00": the card shows the day beside it."""
    start = _local(entry.start_at)
    if entry.end_at is None:
        return f"{start:%H:%M}"
    end = _local(entry.end_at)
    if end.date() != start.date():
        return f"{start:%H:%M} – {end:%a} {end.day} {end:%b, %H:%M}"
    return f"{start:%H:%M}–{end:%H:%M}"


@bp.app_template_filter("event_day")
def event_day(entry: EntryView) -> dict[str, str]:
    start = _local(entry.start_at)
    return {"day": str(start.day), "month": f"{start:%b}", "weekday": f"{start:%a}"}


@bp.app_template_filter("event_price")
def event_price(entry: EntryView) -> str:
    """What one place or the cheapest ticket costs."""
    if entry.bookable or not entry.ticket_types:
        return Money(entry.cost, entry.currency).display()
    cheapest = min(t.cost for t in entry.ticket_types)
    if all(t.cost == cheapest for t in entry.ticket_types):
        return Money(cheapest, entry.currency).display()
    return "from " + Money(cheapest, entry.currency).display()


# --------------------------------------------------------------------------- pages


@bp.get("/events/")
async def listing() -> str:
    return await render_template("events/list.html", sections=await upcoming_by_page())


@bp.get("/events/<entry_id>/")
async def entry_page(entry_id: str) -> str:
    view = await events().entry(_entry_id(entry_id))
    if view is None:
        raise EntryNotFound()
    who = identity()
    page = (await _pages([view])).get(view.page_post_id) if view.page_post_id else None
    booked = await events().pending_booking(who, view.id) if view.bookable else False
    in_cart: list[tuple[str, int]] = []
    if view.ticket_types and who.user_id is not None:
        counts = await events().pending_ticket_counts(who.user_id, view.id)
        in_cart = [(t.name, counts[t.id]) for t in view.ticket_types if counts.get(t.id)]
    now = services().clock.now()
    return await render_template(
        "events/entry.html",
        entry=view,
        page=page,
        booked=booked,
        in_cart=in_cart,
        over=(view.end_at or view.start_at) < now,
        refund_note=REFUND_NOTE,
    )


def _back_to(entry_id: int) -> Response:
    return cast(Response, redirect(f"/events/{entry_id}/", 303))


@bp.post("/events/<entry_id>/book/")
async def book(entry_id: str) -> ResponseReturnValue:
    await check_csrf()
    eid = _entry_id(entry_id)
    who = ensure_identity()
    try:
        booked = await events().book(who, eid)
    except EntryNotFound:
        raise
    except CartError as exc:
        await flash(exc.message, "error")
        return _back_to(eid)
    await services().cart.forget_summary(who)
    name = booked.entry.name
    when = event_when(booked.entry)
    await flash(
        f"Booked: {name}, {when}. It is in your cart until you pay."
        if booked.created
        else f"{name}, {when}, is already in your cart.",
        "success" if booked.created else "info",
    )
    return _back_to(eid)


async def _form_quantities() -> dict[int, object]:
    form = await quart_request.form
    quantities: dict[int, object] = {}
    for key, value in form.items():
        if not key.startswith("quantity_"):
            continue
        type_id = positive_id(key.removeprefix("quantity_"))
        if type_id is None:
            raise TicketTypeNotFound()
        quantities[type_id] = value.strip() or "0"
    return quantities


@bp.post("/events/<entry_id>/tickets/")
async def buy_tickets(entry_id: str) -> ResponseReturnValue:
    await check_csrf()
    eid = _entry_id(entry_id)
    who = identity()
    try:
        if who.user_id is None:
            raise LoginRequired("Sign in to buy tickets.")
        quantities = await _form_quantities()
        added = await events().add_tickets(who.user_id, eid, quantities)
    except EntryNotFound:
        raise
    except CartError as exc:
        await flash(exc.message, "error")
        return _back_to(eid)
    await services().cart.forget_summary(who)
    what = ", ".join(f"{n} × {added.names[t]}" for t, n in added.added.items())
    await flash(f"Added {what} to your cart. {REFUND_NOTE}", "success")
    return _back_to(eid)


# --------------------------------------------------------------------------- JSON


def entry_json(view: EntryView, page_slug: str | None) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "start_at": view.start_at.isoformat(),
        "end_at": view.end_at.isoformat() if view.end_at else None,
        "cost": format(view.cost, "f"),
        "page_slug": page_slug,
        "bookable": view.bookable,
        "ticket_types": [
            {
                "id": t.id,
                "name": t.name,
                "cost": format(t.cost, "f"),
                "capacity": t.capacity,
                "available": t.available,
            }
            for t in view.ticket_types
        ],
    }


@api_bp.get("/entries")
async def api_entries() -> ResponseReturnValue:
    views = await events().upcoming()
    pages = await _pages(views)
    return jsonify(
        [
            entry_json(v, pages[v.page_post_id].slug if v.page_post_id in pages else None)
            for v in views
        ]
    )


@api_bp.post("/entries/<entry_id>/book")
async def api_book(entry_id: str) -> ResponseReturnValue:
    await json_body()
    who = ensure_identity()
    booked = await events().book(who, _entry_id(entry_id))
    await services().cart.forget_summary(who)
    response = jsonify(
        {"entry_id": booked.entry.id, "state": "pending", "already_in_cart": not booked.created}
    )
    response.status_code = 201
    return response


@api_bp.post("/entries/<entry_id>/tickets")
async def api_buy_tickets(entry_id: str) -> ResponseReturnValue:
    body = await json_body()
    who = identity()
    if who.user_id is None:
        raise LoginRequired("Sign in to buy tickets.")
    eid = _entry_id(entry_id)
    if "ticket_type_id" not in body:
        raise BadInput("Give a ticket_type_id.", field="ticket_type_id")
    type_id = positive_id(body["ticket_type_id"])
    if type_id is None:
        raise TicketTypeNotFound()
    quantity = parse_quantity(body.get("quantity", 1), allow_zero=False)
    added = await events().add_tickets(who.user_id, eid, {type_id: quantity})
    await services().cart.forget_summary(CartIdentity(user_id=who.user_id))
    response = jsonify(
        {
            "entry_id": eid,
            "ticket_type_id": type_id,
            "added": quantity,
            "in_cart": added.in_cart[type_id],
            "message": REFUND_NOTE,
        }
    )
    response.status_code = 201
    return response


@api_bp.get("/tickets")
async def api_tickets() -> ResponseReturnValue:
    who = identity()
    if who.user_id is None:
        raise LoginRequired("Sign in to see your tickets.")
    return jsonify(
        [
            {
                "ticket_id": t.ticket_id,
                "entry_id": t.entry_id,
                "ticket_type_id": t.ticket_type_id,
                "state": t.state,
                "order_id": t.order_id,
            }
            for t in await events().tickets_of(who.user_id)
        ]
    )
