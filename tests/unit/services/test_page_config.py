from __future__ import annotations

import logging

import pytest

from rose_cart.adapters.crypto import SecretBox
from rose_cart.domain.errors import PaymentProviderUnavailable
from rose_cart.domain.identity import CartIdentity
from rose_cart.services.page_config import PageConfigService
from tests.unit.services.conftest import Harness

ALICE = CartIdentity(user_id=7)
OLD = "the secret the page keys were stored with"
NEW = "the secret that replaces it and goes first"
LOST = "a secret nobody kept"


def page_configs(h: Harness, *secrets: str) -> PageConfigService:
    """The service as a process configured with ``secrets`` (newest first) sees it."""
    running = h.services.page_configs
    return PageConfigService(running.uow, SecretBox(*secrets), running.site, h.clock)


async def stored_key(h: Harness, page_id: int) -> str | None:
    async with h.services.page_configs.uow() as tx:
        stored = await tx.page_configs.get(page_id)
    return stored.api_key_encrypted if stored else None


async def test_a_page_key_that_cannot_be_read_refuses_payment_instead_of_paying_the_co_op(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # The bakery's key was stored under an encryption key this process no longer has.
    await page_configs(harness, LOST).ensure(101, "MBAKERY1", "sup_sk_bakery", "bakery")
    with caplog.at_level(logging.WARNING), pytest.raises(PaymentProviderUnavailable) as refused:
        await harness.services.page_configs.account_for(101)
    assert refused.value.code == "payment_provider_unavailable"
    assert "seller" in refused.value.message and "cart is safe" in refused.value.message
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "page 101" in logged
    assert "sup_sk_bakery" not in logged and str(await stored_key(harness, 101)) not in logged


async def test_checkout_for_such_a_page_takes_no_money_and_works_once_the_key_is_set_again(
    harness: Harness,
) -> None:
    await page_configs(harness, LOST).ensure(101, "MBAKERY1", "sup_sk_bakery", "bakery")
    await harness.services.cart.add(ALICE, 1, 2)
    with pytest.raises(PaymentProviderUnavailable):
        await harness.services.checkout.checkout(ALICE, "bakery")
    assert harness.payments.create_calls == 0  # no checkout on the co-op's account
    assert (await harness.services.cart.cart(ALICE)).count == 2
    # The seller sets the key again; the same checkout now pays into their own account.
    await harness.services.page_configs.ensure(101, api_key="sup_sk_bakery")
    result = await harness.services.checkout.checkout(ALICE, "bakery")
    [checkout] = harness.payments.checkouts.values()
    credentials = checkout["credentials"]
    assert (credentials.merchant_code, credentials.api_key) == (  # type: ignore[attr-defined]
        "MBAKERY1",
        "sup_sk_bakery",
    )
    assert result.payment_url.startswith("https://pay.example/")


async def test_pages_without_a_complete_account_of_their_own_use_the_site_account(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    service = harness.services.page_configs
    await service.ensure(103, merchant_code="MHALL1")  # no key
    await service.ensure(104, api_key="sup_sk_market")  # no merchant code
    with caplog.at_level(logging.WARNING):
        for page_id in (None, 102, 103, 104):  # site items; no config; incomplete ones
            account = await service.account_for(page_id)
            assert account.source == "site"
            assert (account.credentials.merchant_code, account.credentials.api_key) == (
                "MSANDBOX",
                "sup_sk_sandbox",
            )
    assert not caplog.records


async def test_rotate_keys_re_encrypts_every_readable_key_with_the_newest_secret(
    harness: Harness,
) -> None:
    before = page_configs(harness, OLD)
    await before.ensure(101, "MBAKERY1", "sup_sk_bakery")
    await before.ensure(102, "MGARDEN1", "sup_sk_garden")
    await before.ensure(103, "MHALL1", "sup_sk_hall")
    await page_configs(harness, LOST).ensure(104, "MLOST1", "sup_sk_lost")
    await before.ensure(105, "MNOKEY1")
    lost_token = await stored_key(harness, 104)

    # Small batches, so the rotation has to carry on from one batch to the next.
    report = await page_configs(harness, NEW, OLD).rotate_keys(batch_size=2)
    pages = report.part("page")
    assert (pages.rotated, pages.unreadable, pages.changed) == (3, (104,), 0)
    assert report.rotated == 3 and not report.complete

    # The old secret can now be dropped: the new one alone reads every key it could.
    after = page_configs(harness, NEW)
    for page_id, key in ((101, "sup_sk_bakery"), (102, "sup_sk_garden"), (103, "sup_sk_hall")):
        account = await after.account_for(page_id)
        assert (account.source, account.credentials.api_key) == ("page", key)
    with pytest.raises(PaymentProviderUnavailable):
        await page_configs(harness, OLD).account_for(101)
    # What nothing could read is left as it was, for whoever still has its secret.
    assert await stored_key(harness, 104) == lost_token
    assert (await after.account_for(105)).source == "site"

    again = await page_configs(harness, NEW).rotate_keys()
    assert (again.rotated, again.part("page").unreadable) == (3, (104,))
    assert (await after.account_for(102)).credentials.api_key == "sup_sk_garden"


async def test_rotating_with_nothing_unreadable_is_complete(harness: Harness) -> None:
    nothing = await page_configs(harness, NEW, OLD).rotate_keys()
    assert nothing.complete and nothing.rotated == 0
    await page_configs(harness, OLD).ensure(101, "MBAKERY1", "sup_sk_bakery")
    report = await page_configs(harness, NEW, OLD).rotate_keys()
    assert report.complete and report.rotated == 1


async def test_a_key_a_seller_sets_while_keys_are_rotated_is_not_overwritten(
    harness: Harness,
) -> None:
    await page_configs(harness, OLD).ensure(101, "MBAKERY1", "sup_sk_bakery")
    read_by_rotation = await stored_key(harness, 101)
    assert read_by_rotation is not None
    rotated = SecretBox(NEW, OLD).rotate(read_by_rotation)
    assert rotated is not None
    # Between the rotation's read and its write, the seller sets a new key.
    await page_configs(harness, NEW, OLD).ensure(101, api_key="sup_sk_bakery_new")
    async with harness.services.page_configs.uow() as tx:
        assert not await tx.page_configs.replace_api_key(101, read_by_rotation, rotated)
    account = await page_configs(harness, NEW).account_for(101)
    assert account.credentials.api_key == "sup_sk_bakery_new"
