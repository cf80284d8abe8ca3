"""A shopper's walk on a phone (390 px) and a desktop (1280 px): every change says what it
did where the shopper is looking, a refused change says why and the cart stays right, the
badge always matches the cart, the co-op shop's own items check out beside another seller's,
and every page fits the window and passes an accessibility check (axe-core).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.a11y import check_page, contrast_of
from tests.e2e.conftest import Shots
from tests.e2e.test_purchase import (
    PAY_PAGE,
    badge,
    cart_line,
    expect_sandbox_asks_for,
    fresh_username,
    log_in,
    log_out,
    order_id_from_return_page,
    product_card,
)

pytestmark = pytest.mark.e2e

VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 900)}
#: How many lines each element's text takes.
LINES_OF_TEXT = """(elements) => elements.map((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top))).size;
})"""


def toast(page: Page) -> Locator:
    """The newest message about what just changed."""
    return page.locator("#flash .toast").last


def expect_told(page: Page, category: str, text: str | re.Pattern[str]) -> None:
    """A message of that kind says it, and it is on the screen without scrolling."""
    message = toast(page)
    expect(message).to_have_attribute("data-category", category)
    expect(message).to_contain_text(text)
    expect(message).to_be_in_viewport(ratio=1)


def add(page: Page, title: str, quantity: int) -> Locator:
    card = product_card(page, title)
    box = card.get_by_role("spinbutton", name=f"Quantity of {title}")
    box.fill(str(quantity))
    card.get_by_role("button", name="Add to cart").click()
    return box


def group(page: Page, slug: str) -> Locator:
    return page.locator(f'article.page-group[data-page="{slug}"]')


def expect_badge_matches_cart(page: Page, count: int) -> None:
    """The header badge and the cart page agree on the number of items."""
    expect(badge(page)).to_have_text(str(count))
    expect(page.locator("p.cart-summary")).to_have_attribute("data-count", str(count))
    expect(page.locator("#cart-mini")).to_have_attribute(
        "aria-label", f"Cart, {count} item{'' if count == 1 else 's'}"
    )


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_shopper_is_told_what_changed_and_checks_out_the_coop_shop_beside_another_seller(
    page: Page, shots: Shots, device: str
) -> None:
    width, height = VIEWPORTS[device]
    page.set_viewport_size({"width": width, "height": height})
    shots.prefix = f"ux-{device}-"
    phone = device == "phone"

    # 1. The shop front fits the window and reads well; the empty badge too.
    page.goto("/")
    expect(badge(page)).to_have_text("0")
    check_page(page, "shop front")
    assert contrast_of(page, "#cart-mini .badge") >= 4.5
    assert contrast_of(page, ".sold-out-label") >= 4.5
    if not phone:
        lines = page.locator("form.add-form button").evaluate_all(LINES_OF_TEXT)
        assert set(lines) == {1}, f"'Add to cart' wraps on a desktop: {lines} lines"

    # 2. Adding says so on the screen, wherever the card is, and the box goes back to 1.
    page.evaluate("window.__e2eSamePage = true")
    eggs_box = add(page, "Free-range eggs (6)", 2)
    expect(badge(page)).to_have_text("2")
    expect_told(page, "success", "Added Free-range eggs (6) to your cart (now 2)")
    expect(eggs_box).to_have_value("1")
    # The cart is one tap away even far down the page: the message links to it, and on a
    # phone the cart button floats in the corner.
    expect(toast(page).get_by_role("link", name="View your cart")).to_be_in_viewport()
    if phone:
        expect(page.locator("#cart-mini")).to_be_in_viewport(ratio=1)
    shots("added far down the page", full_page=not phone)
    add(page, "Rose Ash tote bag", 1)
    expect(badge(page)).to_have_text("3")
    add(page, "Seasonal veg box", 2)
    expect(badge(page)).to_have_text("5")
    expect_told(page, "success", "Added Seasonal veg box")

    # 3. A third veg box (2 at most) is refused: the reason replaces the last "Added".
    add(page, "Seasonal veg box", 1)
    expect_told(page, "error", re.compile(r"at most 2 of Seasonal veg box"))
    expect(page.locator("#flash .flash-success")).to_have_count(0)
    expect(badge(page)).to_have_text("5")
    assert page.evaluate("window.__e2eSamePage === true"), "adding reloaded the page"
    shots("third veg box refused")
    check_page(page, "shop front with a refusal")

    # 4. Logging in keeps the cart and says how many items it kept.
    log_in(page, fresh_username("ux"))
    expect(page.locator("#flash")).to_contain_text("kept the 5 items")
    expect(badge(page)).to_have_text("5")

    # 5. The cart: three sellers, their prices labelled, nothing wider than the window.
    page.locator("#cart-mini").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    expect_badge_matches_cart(page, 5)
    eggs = cart_line(group(page, "garden"), "Free-range eggs (6)")
    expect(eggs.locator(".unit-price")).to_have_attribute("data-label", "Price each")
    expect(eggs.locator(".line-total")).to_have_text("£6.40")
    check_page(page, "cart")
    shots("cart")

    # 6. Seven boxes of eggs (5 at most): refused, said beside the line and on the screen,
    #    and the form shows what the cart really holds.
    eggs.get_by_role("spinbutton").fill("7")
    eggs.get_by_role("button", name=re.compile(r"^Update")).click()
    expect_told(page, "error", "You can order at most 5 of Free-range eggs (6).")
    eggs = cart_line(group(page, "garden"), "Free-range eggs (6)")
    expect(eggs.get_by_role("spinbutton")).to_have_value("2")
    expect(eggs.locator(".line-total")).to_have_text("£6.40")
    expect(eggs.locator(".line-refusal")).to_contain_text("at most 5")
    expect_badge_matches_cart(page, 5)
    expect(page).to_have_url(re.compile(r"/cart/$"))
    shots("eggs refused")
    check_page(page, "cart with a refused change")

    # 7. Update and remove say what they did, and the badge follows the cart.
    eggs.get_by_role("spinbutton").fill("3")
    eggs.get_by_role("button", name=re.compile(r"^Update")).click()
    expect_told(page, "success", "Free-range eggs (6): quantity set to 3.")
    eggs = cart_line(group(page, "garden"), "Free-range eggs (6)")
    expect(eggs.locator(".line-total")).to_have_text("£9.60")
    expect(eggs.locator(".line-refusal")).to_have_count(0)
    expect_badge_matches_cart(page, 6)
    veg = cart_line(group(page, "garden"), "Seasonal veg box")
    veg.get_by_role("button", name="Remove Seasonal veg box").click()
    expect_told(page, "success", "Removed Seasonal veg box.")
    expect(cart_line(group(page, "garden"), "Seasonal veg box")).to_have_count(0)
    expect_badge_matches_cart(page, 4)
    shots("updated and removed")

    # The other cart pages fit and pass too.
    for path, where in [("/cart/overview/", "carts by seller"), ("/cart/garden/", "a page's cart")]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        check_page(page, where)
    page.goto("/cart/")

    # 8. The co-op shop's own tote bag checks out while the garden's eggs stay in the cart.
    site = group(page, "site")
    expect(site.get_by_role("heading", name="Rose Ash co-op shop")).to_be_visible()
    checkout = site.locator("form.checkout-form button")
    expect(checkout).to_contain_text("£8.00")
    checkout.click()
    expect(page).to_have_url(PAY_PAGE)
    match = PAY_PAGE.search(page.url)
    assert match is not None
    checkout_id = match[1]
    expect_sandbox_asks_for(page, "£8.00")
    check_page(page, "SumUp's payment page (the sandbox)")
    shots("sumup pay page")
    page.get_by_role("button", name=re.compile(r"^Pay\b")).click()
    order_id = order_id_from_return_page(page)
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "paid")
    expect(page.locator("main")).to_contain_text("Rose Ash co-op shop")
    check_page(page, "return page")
    shots("paid")

    # 9. Only the tote bag left the cart.
    page.goto("/cart/")
    expect(group(page, "site")).to_have_count(0)
    expect(
        cart_line(group(page, "garden"), "Free-range eggs (6)").get_by_role("spinbutton")
    ).to_have_value("3")
    expect_badge_matches_cart(page, 3)

    # 10. The orders: a list that fits a phone, and an order's payments in plain words.
    page.get_by_role("link", name="My orders").click()
    expect(page).to_have_url(re.compile(r"/orders/$"))
    row = page.locator(f'tr[data-order-id="{order_id}"]')
    expect(row).to_contain_text("£8.00")
    expect(row).to_contain_text("paid")
    expect(row).to_be_in_viewport()
    check_page(page, "orders")
    shots("orders")
    row.get_by_role("link", name=f"#{order_id}").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}/$"))
    payments = page.locator("details.payment-history")
    payments.locator("summary").click()
    expect(payments.locator("tr.payment-row")).to_have_count(1)
    expect(payments.locator("tr.payment-row")).to_contain_text("paid")
    expect(page.locator("main")).not_to_contain_text(checkout_id)
    expect(page.locator("main")).to_contain_text(re.compile(r"\d\d:\d\d (GMT|BST|UTC)"))
    check_page(page, "order")
    shots("order")

    # 11. Logged out, the orders page says logging in shows them.
    log_out(page)
    page.goto("/orders/")
    expect(page.locator("main")).to_contain_text("Log in to see your orders")
    check_page(page, "orders, logged out")

    # 12. A page that is not there keeps to the palette and the checks.
    page.goto("/no-such-page/")
    expect(page.get_by_role("heading", name="We couldn't find that")).to_be_visible()
    check_page(page, "not found")
    if phone:
        shots("not found")
