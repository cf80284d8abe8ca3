"""After a form, the visitor goes back only to a path of this site, read as a browser reads it."""

from __future__ import annotations

import pytest

from rose_cart.web.redirects import same_site_path
from tests.web.conftest import Web

OFF_SITE = [
    "/\t/evil.example",
    "/\t\t/evil.example",
    "/\r\n/evil.example",
    "/\n/evil.example",
    "\t//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "//evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    " //evil.example",
    "evil.example",
    "/\x00/evil.example",
    "",
]


@pytest.mark.parametrize("raw", OFF_SITE)
def test_anything_a_browser_would_take_off_site_goes_home(raw: str) -> None:
    assert same_site_path(raw) == "/"
    assert same_site_path(raw, "/cart/") == "/cart/"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/cart/", "/cart/"),
        ("/cart/bakery/?x=1#top", "/cart/bakery/?x=1#top"),
        ("/cart/\tbakery/", "/cart/bakery/"),  # as the browser would go there
        ("/%09/evil.example", "/%09/evil.example"),  # a path segment, not a host
    ],
)
def test_paths_of_this_site_are_kept(raw: str, expected: str) -> None:
    assert same_site_path(raw) == expected


@pytest.mark.parametrize("raw", ["/\t/evil.example", "/\n/evil.example", "/\\evil.example"])
async def test_adding_to_the_cart_never_sends_the_visitor_off_site(web: Web, raw: str) -> None:
    response = await web.form("/cart/add/", product_id="1", next=raw)
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart/"
    assert await web.quantities() == {1: 1}


async def test_a_percent_encoded_tab_in_the_form_is_a_tab_and_goes_home(web: Web) -> None:
    async with web.client.session_transaction() as session:
        session["csrf"] = "tok"
    response = await web.client.post(
        "/cart/add/",
        data="csrf_token=tok&product_id=1&next=%2F%09%2Fevil.example",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart/"


@pytest.mark.parametrize("raw", ["/\t/evil.example", "/\r\n/evil.example", "//evil.example"])
async def test_after_login_the_visitor_stays_on_this_site(web: Web, raw: str) -> None:
    response = await web.form("/auth/dev-login", username="alice", next=raw)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


async def test_after_login_the_visitor_goes_back_where_they_were(web: Web) -> None:
    response = await web.form("/auth/dev-login", username="alice", next="/cart/bakery/")
    assert response.headers["Location"] == "/cart/bakery/"
