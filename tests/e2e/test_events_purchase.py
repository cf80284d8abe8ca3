"""A booking and tickets bought beside products, in a real browser: the events pages, the
cart, two checkouts on the SumUp sandbox, and the order pages with their states."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Shots
from tests.e2e.test_purchase import (
    PAY_PAGE,
    add_to_cart,
    badge,
    fresh_username,
    log_in,
    order_id_from_return_page,
)

pytestmark = pytest.mark.e2e

REFUND_NOTE = "If the event sells out before payment, you will be refunded."


def group(page: Page, title: str) -> Locator:
    return page.locator("article.page-group").filter(has=page.get_by_role("heading", name=title))


def open_event(page: Page, name: str) -> None:
    page.goto("/events/")
    page.get_by_role("link", name=name).first.click()
    expect(page).to_have_url(re.compile(r"/events/\d+/$"))
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def check_out_and_pay(page: Page, seller: str, total: str) -> int:
    page.goto("/cart/")
    button = group(page, seller).locator("form.checkout-form button")
    expect(button).to_contain_text(total)
    button.click()
    expect(page).to_have_url(PAY_PAGE)
    page.get_by_role("button", name=re.compile(r"^Pay\b")).click()
    order_id = order_id_from_return_page(page)
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "paid")
    return order_id


def until_order_page_says(page: Page, order_id: int, text: str, seconds: float = 15) -> None:
    """Bookings and tickets are confirmed by the relay a moment after the payment."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(f"/orders/{order_id}/")
        if text in page.locator("main").inner_text() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    expect(page.locator("main")).to_contain_text(text)


def test_a_booking_and_tickets_bought_beside_products(page: Page, shots: Shots) -> None:
    shots.prefix = "events-"
    page.goto("/")
    log_in(page, fresh_username("supper"))
    expect(page.locator("main")).to_contain_text("Harvest supper in the garden")
    add_to_cart(page, "Salad leaves, 200 g", 1, badge_after=1)
    add_to_cart(page, "Sourdough loaf", 1, badge_after=2)
    shots("products")

    # Two supper tickets: pending in the cart, not yet sold.
    open_event(page, "Harvest supper in the garden")
    supper = page.locator("li.ticket-type").filter(has_text="Supper").first
    left_before = supper.locator(".ticket-type-price small").inner_text()
    supper.get_by_role("spinbutton").fill("2")
    page.get_by_role("button", name="Buy tickets").click()
    expect(page.locator("main")).to_contain_text(REFUND_NOTE)
    expect(page.locator(".in-cart-note")).to_contain_text("2 × Supper")
    expect(badge(page)).to_have_text("4")
    expect(supper.locator(".ticket-type-price small")).to_have_text(left_before)
    shots("tickets in the cart")

    # A place on the bread class.
    open_event(page, "Sourdough bread-making class")
    page.locator("form.book-form button").first.click()
    expect(page.locator("main")).to_contain_text("You have booked a place")
    expect(badge(page)).to_have_text("5")
    shots("booked")

    # The cart: each page's group holds its products, bookings and tickets, with subtotals.
    page.goto("/cart/")
    garden = group(page, "Community Garden")
    expect(garden).to_contain_text("Salad leaves")
    expect(garden).to_contain_text("Supper")
    expect(garden).to_contain_text(REFUND_NOTE)
    expect(garden.locator("form.checkout-form button")).to_contain_text("£38.50")
    bakery = group(page, "Rose Ash Bakery")
    expect(bakery).to_contain_text("Sourdough bread-making class")
    expect(bakery.locator("form.checkout-form button")).to_contain_text("£39.50")
    shots("cart")

    garden_order = check_out_and_pay(page, "Community Garden", "£38.50")
    shots("garden paid")
    until_order_page_says(page, garden_order, "confirmed")
    expect(page.locator("main")).to_contain_text("Supper")
    shots("garden order")

    bakery_order = check_out_and_pay(page, "Rose Ash Bakery", "£39.50")
    until_order_page_says(page, bakery_order, "provisional")
    expect(page.locator("main")).to_contain_text("Sourdough bread-making class")
    shots("bakery order")

    page.goto("/cart/")
    expect(page.locator("main")).to_contain_text("Your cart is empty")
    expect(badge(page)).to_have_text("0")
    tickets = page.request.get("/events/api/tickets").json()
    assert sorted(t["state"] for t in tickets) == ["confirmed", "confirmed"]
    assert {t["order_id"] for t in tickets} == {garden_order}
