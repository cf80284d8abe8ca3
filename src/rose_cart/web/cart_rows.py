"""One page group's lines with their controls, as HTML: the table of the cart pages.

It is the cart's most rendered markup (a row and two forms per line, on every view of the
cart and after every change made on it), and written by a Jinja template it cost more than
everything else the cart page does. Here it is written straight into a list of strings.
Only a line's own text (title, image, a refusal's message) comes from elsewhere; it is
escaped once each. Everything else is numbers, the kind, our own money text and fixed
markup.

Products, then bookings, then tickets; each kind has its own subtotal when the group holds
more than one kind. Changes are made in place: the cart body, the #flash messages and the
header badge are taken from the answer, which is the cart page as it now is.
"""

from __future__ import annotations

import secrets
from typing import Any

from markupsafe import Markup, escape

from rose_cart.domain.cart import CartLine, LineKind, PageGroup, PageRef
from rose_cart.domain.money import Money
from rose_cart.services.checkout import SITE_TITLE, checkout_path

KIND_NAMES: dict[str, str] = {"product": "Products", "booking": "Bookings", "ticket": "Tickets"}
IN_PLACE = (
    'hx-target="#cart-body" hx-select="#cart-body" '
    'hx-select-oob="#flash:innerHTML,#cart-mini" hx-swap="outerHTML show:none"'
)
_HEAD = (
    '<table class="cart-lines stack-table">\n  <thead>\n    <tr><th scope="col">Item</th>'
    '<th scope="col" class="num">Price each</th><th scope="col">Quantity</th>'
    '<th scope="col" class="num">Total</th><th scope="col">'
    '<span class="visually-hidden">Remove</span></th></tr>\n  </thead>\n'
)
#: The line's id under the name a refusal gives it, by kind.
_REFUSAL_KEY = {"product": "product_id", "booking": "entry_id", "ticket": "ticket_type_id"}


def money(value: Money | None) -> str:
    """A price as shown to people; a dash when there is none (mixed currencies)."""
    return value.display() if value is not None else "—"


def cart_groups(
    groups: list[PageGroup], here: str, csrf: str, refusal: dict[str, Any] | None = None
) -> Markup:
    """The cart page's groups, one article each: the seller's heading and what the group
    holds, its table (``cart_rows``), its subtotal and its checkout form."""
    out: list[str] = []
    for group in groups:
        page = group.page
        if page is not None:
            slug = escape(page.slug)
            heading = f'<a href="/cart/{slug}/">{escape(page.title)}</a>'
        else:
            slug, heading = Markup("site"), SITE_TITLE
        total = money(group.total)
        out.append(
            f'  <article class="page-group" data-page="{slug}">\n'
            '    <header class="group-header">\n'
            f"      <h2>{heading}</h2>\n"
            f'      <span class="muted kind-counts">{escape(group.counts_text)}</span>\n'
            "    </header>\n    "
            f"{cart_rows(group, here, csrf, refusal)}\n"
            '    <footer class="group-footer">\n'
            f'      <span class="group-subtotal">Subtotal <strong>{total}</strong></span>\n'
            f"      {checkout_form(page, total, csrf)}\n"
            "    </footer>\n  </article>\n"
        )
    return Markup("".join(out))


def idempotency_key() -> str:
    """A fresh key for one rendered checkout form: a double click sends the same one."""
    return secrets.token_urlsafe(16)


def checkout_form(page: PageRef | None, total: str, csrf: str) -> Markup:
    """A group's checkout button, as a form of its own. Each rendering carries a fresh
    idempotency key: a double click sends the same one, and is charged once."""
    title = escape(page.title) if page is not None else SITE_TITLE
    return Markup(
        f'<form method="post" action="{escape(checkout_path(page))}" class="checkout-form" '
        'hx-boost="false">\n'
        f'        <input type="hidden" name="csrf_token" value="{escape(csrf)}">\n'
        '        <input type="hidden" name="idempotency_key" '
        f'value="{idempotency_key()}">\n'
        '        <button type="submit" class="checkout-button">Checkout<span '
        f'class="visually-hidden"> {title},</span> {escape(total)}</button>\n'
        "      </form>"
    )


def cart_rows(
    group: PageGroup, here: str, csrf: str, refusal: dict[str, Any] | None = None
) -> Markup:
    """The group's table. ``here`` is the cart page's path (where each change comes back
    to), ``csrf`` the visitor's token (every form carries it), ``refusal`` a change just
    refused: its ``code``, ``message`` and the line's id (``product_id``, ``entry_id`` or
    ``ticket_type_id``, as text)."""
    hidden = (
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">\n'
        f'          <input type="hidden" name="next" value="{escape(here)}">'
    )
    kinds = group.kinds
    out = [_HEAD]
    for kind in kinds:
        out.append(f'  <tbody class="cart-kind" data-kind="{kind}">\n')
        if kinds != ["product"]:
            out.append(
                '    <tr class="kind-heading"><th scope="rowgroup" colspan="5">'
                f"{KIND_NAMES[kind]}</th></tr>\n"
            )
        for line in group.lines_of(kind):
            _row(out, kind, line, hidden, refusal)
        if len(kinds) > 1:
            name = KIND_NAMES[kind]
            out.append(
                f'    <tr class="kind-subtotal"><th scope="row" colspan="3">{name} subtotal</th>'
                f'<td class="num" data-label="{name} subtotal">{money(group.subtotal(kind))}'
                "</td><td></td></tr>\n"
            )
        if kind == "ticket":
            out.append(
                '    <tr class="ticket-notice"><td colspan="5"><small>If the event sells out '
                "before payment, you will be refunded.</small></td></tr>\n"
            )
        out.append("  </tbody>\n")
    out.append("</table>")
    return Markup("".join(out))


def _row(
    out: list[str],
    kind: LineKind,
    line: CartLine,
    hidden: str,
    refusal: dict[str, Any] | None,
) -> None:
    product_id, entry_id, ticket_type_id = line.product_id, line.entry_id, line.ticket_type_id
    line_key = product_id or entry_id or ticket_type_id
    title = escape(line.title)
    refused = bool(refusal) and refusal.get(_REFUSAL_KEY[kind]) == str(line_key)  # type: ignore[union-attr]
    described = (
        f' aria-invalid="true" aria-describedby="refusal-{kind}-{line_key}"' if refused else ""
    )
    out.append(
        f'    <tr class="cart-line{" refused" if refused else ""}" data-kind="{kind}" '
        f'data-product-id="{product_id or ""}"'
        + (f' data-entry-id="{entry_id}"' if entry_id else "")
        + (f' data-ticket-type-id="{ticket_type_id}"' if ticket_type_id else "")
        + '>\n      <td class="item">\n        <div class="item-cell">\n'
    )
    if line.image:
        out.append(
            f'          <img src="{escape(line.image)}" alt="" width="44" height="44" '
            'class="thumb">\n'
        )
    out.append(f'          <div>\n            <span class="title">{title}</span>\n')
    if not line.available:
        out.append('            <small class="warn">Not available at the moment</small>\n')
    if line.start_at:
        when = escape(line.start_at.strftime("%a %d %b, %H:%M"))
        out.append(f'            <small class="muted when">{when}</small>\n')
    out.append(
        "          </div>\n        </div>\n      </td>\n"
        f'      <td class="num unit-price" data-label="Price each">{money(line.unit_price)}</td>\n'
        '      <td class="quantity" data-label="Quantity">\n'
    )
    if kind == "product":
        out.append(
            f'        <form method="post" action="/cart/items/{product_id}/" class="qty-form" '
            f"{IN_PLACE}>\n          {hidden}\n"
            f'          <input type="number" id="qty-p{product_id}" name="quantity" '
            f'value="{line.quantity}" min="0" max="99" aria-label="Quantity of {title}"'
            f"{described}>\n"
            f'          <button type="submit" id="update-p{product_id}" '
            'class="secondary outline small">Update<span class="visually-hidden"> '
            f"{title}</span></button>\n        </form>\n"
        )
    elif kind == "ticket" and ticket_type_id:
        out.append(
            f'        <form method="post" action="/cart/tickets/{ticket_type_id}/" '
            f'class="qty-form" {IN_PLACE}>\n          {hidden}\n'
            f'          <input type="number" id="qty-t{ticket_type_id}" name="quantity" '
            f'value="{line.quantity}" min="0" max="99" aria-label="Number of {title} tickets"'
            f"{described}>\n"
            f'          <button type="submit" id="update-t{ticket_type_id}" '
            'class="secondary outline small">Update<span class="visually-hidden"> '
            f"{title} tickets</span></button>\n        </form>\n"
        )
    else:
        out.append(f"        {line.quantity}\n")
    if refused:
        assert refusal is not None
        out.append(
            f'        <small class="line-refusal" id="refusal-{kind}-{line_key}" '
            f'data-error-code="{escape(refusal.get("code", ""))}">'
            f"{escape(refusal.get('message', ''))}</small>\n"
        )
    out.append(
        "      </td>\n"
        f'      <td class="num line-total" data-label="Total">{money(line.line_total)}</td>\n'
        '      <td class="remove-cell">\n'
    )
    if kind == "product":
        remove: str | None = f"/cart/items/{product_id}/remove/"
    elif kind == "booking" and entry_id:
        remove = f"/cart/bookings/{entry_id}/remove/"
    elif kind == "ticket" and ticket_type_id:
        remove = f"/cart/tickets/{ticket_type_id}/remove/"
    else:
        remove = None
    if remove:
        out.append(
            f'        <form method="post" action="{remove}" {IN_PLACE}>\n          {hidden}\n'
            '          <button type="submit" class="link-button remove" '
            f'aria-label="Remove {title}">Remove</button>\n        </form>\n'
        )
    out.append("      </td>\n    </tr>\n")
