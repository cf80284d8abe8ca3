"""The whole purchase in a real browser: shop front, login, cart, SumUp sandbox, orders.

Runs against `rose-cart demo` started as a separate process (see conftest.py), so it goes
through uvicorn, the real database, htmx and the sandbox's redirects and webhooks.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Shots

pytestmark = pytest.mark.e2e

# Plain groups only: Playwright hands these patterns to the browser's JavaScript RegExp.
PAY_PAGE = re.compile(r"/sandbox/sumup/pay/([^/?#]+)$")
RETURN_PAGE = re.compile(r"/checkout/return/(\d+)/$")


def fresh_username(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def badge(page: Page) -> Locator:
    return page.locator("#cart-mini .badge")


def product_card(page: Page, title: str) -> Locator:
    return page.locator("article.product-card").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )


def add_to_cart(page: Page, title: str, quantity: int, badge_after: int) -> None:
    """Type a quantity into the product's card, press its button, wait for the badge."""
    card = product_card(page, title)
    expect(card).to_be_visible()
    # A mark on this very page: a full reload (htmx not working) would wipe it out.
    page.evaluate("window.__e2eSamePage = true")
    card.get_by_role("spinbutton", name=f"Quantity of {title}").fill(str(quantity))
    card.get_by_role("button", name="Add to cart").click()
    expect(badge(page)).to_have_text(str(badge_after))
    expect(page.locator("#flash")).to_contain_text(f"Added {title} to your cart")
    assert page.evaluate("window.__e2eSamePage === true"), "adding to the cart reloaded the page"


def log_in(page: Page, username: str) -> None:
    header = page.locator("header.site-header")
    header.locator("input[name=username]").fill(username)
    header.get_by_role("button", name="Log in").click()
    expect(header).to_contain_text(username)
    expect(header.get_by_role("button", name="Log out")).to_be_visible()


def cart_line(group: Locator, title: str) -> Locator:
    return group.locator("tr.cart-line").filter(has_text=title)


def bakery_group(page: Page) -> Locator:
    return page.locator("article.page-group").filter(
        has=page.get_by_role("heading", name="Rose Ash Bakery")
    )


def check_out_bakery(page: Page, total: str) -> str:
    """Press the bakery's checkout button; return the sandbox checkout id we land on."""
    button = bakery_group(page).locator("form.checkout-form button")
    expect(button).to_have_text(re.compile(r"^\s*Checkout"))
    expect(button).to_contain_text(total)
    button.click()
    expect(page).to_have_url(PAY_PAGE)
    match = PAY_PAGE.search(page.url)
    assert match is not None
    return match[1]


def expect_sandbox_asks_for(page: Page, total: str) -> None:
    amount = total.lstrip("£")
    expect(page.locator("body")).to_contain_text(
        re.compile(rf"{re.escape(total)}|{re.escape(amount)} GBP")
    )
    expect(page.get_by_role("button", name=re.compile(r"^Pay\b"))).to_be_visible()
    expect(page.get_by_role("button", name="Decline")).to_be_visible()


def order_id_from_return_page(page: Page) -> int:
    expect(page).to_have_url(RETURN_PAGE)
    match = RETURN_PAGE.search(page.url)
    assert match is not None
    return int(match[1])


def test_shopper_buys_bread_and_pays_on_the_sumup_page(page: Page, shots: Shots) -> None:
    # 1. The shop front: the bakery's products; two loaves and a focaccia into the basket.
    page.goto("/")
    expect(page.get_by_role("heading", name="Rose Ash Bakery")).to_be_visible()
    expect(product_card(page, "Sourdough loaf")).to_contain_text("£4.50")
    expect(product_card(page, "Rosemary focaccia")).to_contain_text("£3.90")
    expect(badge(page)).to_have_text("0")
    add_to_cart(page, "Sourdough loaf", 2, badge_after=2)
    add_to_cart(page, "Rosemary focaccia", 1, badge_after=3)
    shots("shop front")

    # 2. Logging in keeps what was put in the basket before.
    username = fresh_username("buyer")
    log_in(page, username)
    expect(badge(page)).to_have_text("3")
    shots("logged in")

    # 3. The cart: both items under the bakery, with the right sums.
    page.locator("#cart-mini").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    group = bakery_group(page)
    expect(group).to_have_count(1)
    sourdough = cart_line(group, "Sourdough loaf")
    focaccia = cart_line(group, "Rosemary focaccia")
    expect(sourdough.get_by_role("spinbutton")).to_have_value("2")
    expect(sourdough).to_contain_text("£4.50")
    expect(sourdough.locator(".line-total")).to_have_text("£9.00")
    expect(focaccia.get_by_role("spinbutton")).to_have_value("1")
    expect(focaccia.locator(".line-total")).to_have_text("£3.90")
    expect(group.locator("tr.cart-line")).to_have_count(2)
    expect(group.locator(".group-footer")).to_contain_text("Subtotal £12.90")
    shots("cart")

    # 4. Checkout hands the shopper to SumUp's hosted payment page for the bakery's total.
    check_out_bakery(page, "£12.90")
    expect_sandbox_asks_for(page, "£12.90")
    shots("sumup pay page")

    # 5. Paying brings the shopper back to the cart, which knows the order is paid.
    page.get_by_role("button", name=re.compile(r"^Pay\b")).click()
    order_id = order_id_from_return_page(page)
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "paid")
    expect(page.locator("main")).to_contain_text(re.compile(r"\bpaid\b", re.IGNORECASE))
    expect(page.locator("main")).to_contain_text("Thank you")
    expect(page.locator("main")).to_contain_text("£12.90")
    shots("paid")

    # 6. The order is in the shopper's order history, paid, for £12.90.
    page.get_by_role("link", name="My orders").click()
    expect(page).to_have_url(re.compile(r"/orders/$"))
    link = page.locator(f'a[href="/orders/{order_id}/"]')
    expect(link).to_have_count(1)
    row = link.locator("xpath=ancestor::*[self::tr or self::li or self::article][1]")
    expect(row).to_have_attribute("data-order-status", "paid")
    expect(row).to_contain_text(re.compile(r"\bpaid\b", re.IGNORECASE))
    expect(row).not_to_contain_text(re.compile(r"\b(not paid|unpaid)\b", re.IGNORECASE))
    expect(row).to_contain_text("£12.90")
    shots("orders")

    # 7. The bakery's items left the cart with the order.
    page.locator("#cart-mini").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    expect(page.locator("main")).to_contain_text("Your cart is empty")
    expect(page.locator("tr.cart-line")).to_have_count(0)
    expect(badge(page)).to_have_text("0")
    shots("cart empty")


def test_declined_payment_leaves_the_order_unpaid_and_the_cart_full(
    page: Page, shots: Shots
) -> None:
    shots.prefix = "decline-"
    page.goto("/")
    log_in(page, fresh_username("decliner"))
    add_to_cart(page, "Sourdough loaf", 1, badge_after=1)
    shots("one loaf")

    page.goto("/cart/")
    expect(cart_line(bakery_group(page), "Sourdough loaf").locator(".line-total")).to_have_text(
        "£4.50"
    )
    check_out_bakery(page, "£4.50")
    expect_sandbox_asks_for(page, "£4.50")
    shots("sumup pay page")

    # The card is declined: back on the cart's page, nothing is paid, paying again is offered.
    page.get_by_role("button", name="Decline").click()
    order_id_from_return_page(page)
    return_url = page.url
    status = page.locator("[data-order-status]")
    expect(status).to_have_count(1)
    expect(status).not_to_have_attribute("data-order-status", "paid")
    expect(page.locator("main")).not_to_contain_text("Thank you")
    expect(page.locator("main")).not_to_contain_text(re.compile(r"order is paid", re.IGNORECASE))
    pay_again = page.locator("form[action$='/pay/']").locator("button, input[type=submit]")
    expect(pay_again).to_have_count(1)
    expect(pay_again).to_be_visible()
    expect(pay_again).to_contain_text("£4.50")
    shots("declined")

    # The loaf is still in the cart.
    page.goto("/cart/")
    expect(cart_line(bakery_group(page), "Sourdough loaf").get_by_role("spinbutton")).to_have_value(
        "1"
    )
    expect(badge(page)).to_have_text("1")
    shots("cart still full")

    # Paying again goes back to SumUp for the same amount.
    page.goto(return_url)
    pay_again.click()
    expect(page).to_have_url(PAY_PAGE)
    expect_sandbox_asks_for(page, "£4.50")
    shots("pay again")

    # The order's payments say the first was declined and the second is still open.
    page.goto(return_url.replace("/checkout/return/", "/orders/"))
    history = page.locator("details.payment-history")
    history.locator("summary").click()
    rows = history.locator("tr.payment-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("declined")
    expect(rows.nth(0)).not_to_contain_text("expired")
    expect(rows.nth(1)).to_contain_text("waiting")
    shots("payments")


def log_out(page: Page) -> None:
    header = page.locator("header.site-header")
    header.get_by_role("button", name="Log out").click()
    expect(header.get_by_role("button", name="Log in")).to_be_visible()


def buy_one_loaf(page: Page, username: str) -> int:
    """Log in, buy one sourdough loaf from the bakery, pay on SumUp; the order id."""
    page.goto("/")
    log_in(page, username)
    add_to_cart(page, "Sourdough loaf", 1, badge_after=1)
    page.goto("/cart/")
    check_out_bakery(page, "£4.50")
    page.get_by_role("button", name=re.compile(r"^Pay\b")).click()
    order_id = order_id_from_return_page(page)
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "paid")
    return order_id


def on_a_phone(page: Page, shots: Shots, name: str) -> None:
    """The page on a phone: wide tables scroll in their own box, so the page itself never
    needs scrolling sideways."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px phone"
        shots(name)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_admin_refunds_a_paid_order_and_the_payer_sees_it(page: Page, shots: Shots) -> None:
    shots.prefix = "refund-"
    payer = fresh_username("refundee")
    order_id = buy_one_loaf(page, payer)
    shots("paid")

    # 1. The demo's admin finds the order among everyone's.
    log_out(page)
    log_in(page, "admin")
    page.goto("/admin/orders/")
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    row = page.locator(f'tr[data-order-id="{order_id}"]')
    expect(row).to_have_attribute("data-order-status", "paid")
    expect(row).to_contain_text("Rose Ash Bakery")
    expect(row).to_contain_text("£4.50")
    shots("admin orders")
    on_a_phone(page, shots, "admin orders phone")

    # 2. The filter finds it among the paid bakery orders.
    filters = page.locator("form.admin-filter")
    filters.get_by_label("Status").select_option("paid")
    filters.get_by_label("Page (slug)").fill("bakery")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=paid"))
    expect(page.locator(f'tr[data-order-id="{order_id}"]')).to_be_visible()
    expect(page.locator("tr[data-order-status]:not([data-order-status=paid])")).to_have_count(0)
    shots("admin filtered")

    # 3. The order's page: its payment, what happened, and the refund form.
    page.get_by_role("link", name=f"#{order_id}", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/admin/orders/{order_id}/$"))
    status = page.locator("h1 [data-order-status]")
    expect(status).to_have_attribute("data-order-status", "paid")
    expect(page.locator("table.payments tbody tr")).to_have_count(1)
    expect(page.locator("table.payments tbody tr")).to_contain_text("paid")
    expect(page.locator("table.outbox")).to_contain_text("rose:OrderPaid")
    refund_form = page.locator("form.refund-form")
    expect(refund_form).to_contain_text("all that is left: £4.50")
    shots("admin order")

    # 4. Part of it first, then all that is left.
    refund_form.get_by_role("textbox").fill("1.50")
    refund_form.get_by_role("button", name="Refund").click()
    expect(page.locator("#flash")).to_contain_text("£1.50 refunded in all")
    expect(status).to_have_attribute("data-order-status", "partially_refunded")
    expect(page.locator("ul.refunds li")).to_have_count(1)
    expect(page.locator("ul.refunds")).to_contain_text("£1.50 — done")
    expect(refund_form).to_contain_text("all that is left: £3.00")
    shots("admin partly refunded")

    refund_form.get_by_role("button", name="Refund").click()
    expect(page.locator("#flash")).to_contain_text("£4.50 refunded in all")
    expect(status).to_have_attribute("data-order-status", "refunded")
    expect(status).to_have_text("refunded")
    expect(page.locator("ul.refunds li")).to_have_count(2)
    expect(page.locator("ul.refunds")).to_contain_text("£3.00 — done")
    expect(page.locator("form.refund-form")).to_have_count(0)
    expect(page.locator("table.outbox")).to_contain_text("rose:OrderRefunded")
    shots("admin refunded")
    on_a_phone(page, shots, "admin refunded phone")

    # 5. The payer sees the money went back, on the order's page and in the list.
    log_out(page)
    log_in(page, payer)
    page.goto(f"/orders/{order_id}/")
    notice = page.locator("[data-refunded]")
    expect(notice).to_have_attribute("data-refunded", "4.50")
    expect(notice).to_contain_text("Refunded:")
    expect(notice).to_contain_text("£4.50 of £4.50 went back to your card")
    expect(page.locator("main")).not_to_contain_text("Thank you")
    shots("payer sees refund")
    page.get_by_role("link", name="My orders").click()
    row = page.locator(f'tr[data-order-id="{order_id}"]')
    expect(row).to_have_attribute("data-order-status", "refunded")
    expect(row).to_contain_text("refunded")
    shots("payer orders")
