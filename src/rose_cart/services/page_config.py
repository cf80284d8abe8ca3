"""Per-page SumUp settings: each page (seller) may take payments into its own account."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rose_cart.domain.errors import BadInput, PaymentProviderUnavailable
from rose_cart.domain.ids import positive_id
from rose_cart.domain.order import AccountRef
from rose_cart.ports import (
    Clock,
    PaymentCredentials,
    SecretBox,
    StoredPageConfig,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

_MERCHANT = re.compile(r"^[A-Za-z0-9]{1,32}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{0,32}$")
#: Accounts whose attempt token is remembered at once (far more than the co-op's sellers).
_ATTEMPT_TOKENS = 256


@dataclass(frozen=True, slots=True)
class SiteAccount:
    """The co-op's own SumUp account, used by pages without one and by site-level items."""

    merchant_code: str
    api_key: str
    checkout_prefix: str


@dataclass(frozen=True, slots=True)
class PaymentAccount:
    credentials: PaymentCredentials
    checkout_prefix: str
    source: str  # "page" or "site"


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What re-encrypting one kind of stored key did."""

    kind: str  # whose keys, for people: "page"
    rotated: int = 0  # now encrypted with the newest secret
    unreadable: tuple[int, ...] = ()  # ids whose key no configured secret reads; left as is
    changed: int = 0  # set anew by someone else while rotating; left as they wrote it


@dataclass(frozen=True, slots=True)
class RotationReport:
    parts: tuple[KeyRotation, ...]

    @property
    def rotated(self) -> int:
        return sum(part.rotated for part in self.parts)

    @property
    def complete(self) -> bool:
        """Every stored key is readable, so the older secrets can be dropped."""
        return not any(part.unreadable for part in self.parts)

    def part(self, kind: str) -> KeyRotation:
        return next(part for part in self.parts if part.kind == kind)


@dataclass(frozen=True, slots=True)
class _KeyStore:
    """Somewhere keys encrypted with the SecretBox are stored: a batch of (id, token) after
    an id, in id order, and a replace that is guarded by the old token."""

    kind: str
    batch: Callable[[UnitOfWork, int, int], Awaitable[list[tuple[int, str]]]]
    replace: Callable[[UnitOfWork, int, str, str], Awaitable[bool]]


async def _page_keys(tx: UnitOfWork, after: int, limit: int) -> list[tuple[int, str]]:
    configs = await tx.page_configs.with_api_key_after(after, limit)
    return [(c.page_id, c.api_key_encrypted) for c in configs if c.api_key_encrypted]


async def _replace_page_key(tx: UnitOfWork, page_id: int, old: str, new: str) -> bool:
    return await tx.page_configs.replace_api_key(page_id, old, new)


#: Every place encrypted keys are stored: a table that starts storing them is added here,
#: and ``rotate-keys`` re-encrypts and reports it with the rest.
_KEY_STORES = (
    _KeyStore("page", _page_keys, _replace_page_key),
    # Each payment attempt keeps the key its checkout was made with (for checks, closing
    # and refunds later), so those are re-encrypted too.
    _KeyStore(
        "payment attempt",
        lambda tx, after, limit: tx.orders.attempt_keys_after(after, limit),
        lambda tx, attempt_id, old, new: tx.orders.replace_attempt_key(attempt_id, old, new),
    ),
)

UNREADABLE_PAGE_KEY = (
    "This seller's payment settings cannot be read at the moment, so we cannot take payment "
    "for this order. Your cart is safe; please try again later."
)


def public_view(page_id: int, stored: StoredPageConfig | None) -> dict[str, object]:
    """What siblings may see: never the API key itself."""
    return {
        "page_id": page_id,
        "merchant_code": stored.merchant_code if stored else None,
        "checkout_prefix": stored.checkout_prefix if stored else None,
        "has_api_key": bool(stored and stored.api_key_encrypted),
        "configured": stored is not None,
    }


class PageConfigService:
    def __init__(
        self, uow: UnitOfWorkFactory, box: SecretBox, site: SiteAccount, clock: Clock
    ) -> None:
        self.uow = uow
        self.box = box
        self.site = site
        self.clock = clock
        # Each new payment attempt keeps its account's key encrypted; encrypting it afresh
        # every time gave a new token to store and to decrypt again on every later call.
        # One token per key and process (bounded by the number of accounts in use).
        self._attempt_tokens: dict[str, str] = {}

    async def account_for(self, page_id: int | None) -> PaymentAccount:
        """The page's own SumUp account when it has a complete one, else the site's.

        Raises ``PaymentProviderUnavailable`` when the page has a key that no configured
        secret can read (e.g. the encryption key was changed without rotating): paying into
        the site's account instead would give the seller's money to the co-op.
        """
        stored = None
        if page_id is not None:
            async with self.uow(one_statement=True) as tx:  # one SELECT: no transaction
                stored = await tx.page_configs.get(page_id)
        prefix = (
            stored.checkout_prefix
            if stored and stored.checkout_prefix
            else self.site.checkout_prefix
        )
        if stored and stored.merchant_code and stored.api_key_encrypted:
            api_key = self.box.decrypt(stored.api_key_encrypted)
            if not api_key:
                log.error(
                    "the SumUp API key of page %s cannot be decrypted with the configured "
                    "encryption keys; its payments are refused until the key that encrypted "
                    "it is configured again or the page's key is set anew",
                    page_id,
                )
                raise PaymentProviderUnavailable(UNREADABLE_PAGE_KEY)
            return PaymentAccount(PaymentCredentials(stored.merchant_code, api_key), prefix, "page")
        return PaymentAccount(
            PaymentCredentials(self.site.merchant_code, self.site.api_key), prefix, "site"
        )

    async def rotate_keys(self, batch_size: int = 200) -> RotationReport:
        """Re-encrypt every stored key with the newest secret.

        One short transaction per batch, so it can run while the service runs, and again. A
        key no configured secret reads is left as it is and reported; one set anew while
        rotating is left as written (it was encrypted with the writer's newest secret).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        return RotationReport(
            tuple([await self._rotate(store, batch_size) for store in _KEY_STORES])
        )

    async def _rotate(self, store: _KeyStore, batch_size: int) -> KeyRotation:
        rotated = changed = 0
        unreadable: list[int] = []
        after = 0
        while True:
            async with self.uow() as tx:
                batch = await store.batch(tx, after, batch_size)
                for owner_id, token in batch:
                    new = self.box.rotate(token)
                    if new is None:
                        unreadable.append(owner_id)
                    elif await store.replace(tx, owner_id, token, new):
                        rotated += 1
                    else:
                        changed += 1
            if len(batch) < batch_size:
                return KeyRotation(store.kind, rotated, tuple(unreadable), changed)
            after = batch[-1][0]

    async def get(self, page_id: int) -> dict[str, object]:
        async with self.uow() as tx:
            return public_view(page_id, await tx.page_configs.get(page_id))

    async def ensure(
        self,
        page_id: object,
        merchant_code: object = None,
        api_key: object = None,
        checkout_prefix: object = None,
    ) -> dict[str, object]:
        """Make sure the page has a config row; values given replace the stored ones."""
        pid = _page_id(page_id)
        merchant = _optional(merchant_code, _MERCHANT, "merchant_code")
        prefix = _optional(checkout_prefix, _PREFIX, "checkout_prefix")
        if api_key is not None and (not isinstance(api_key, str) or len(api_key) > 200):
            raise BadInput("api_key must be a string.")
        now = self.clock.now()
        async with self.uow() as tx:
            current = await tx.page_configs.get(pid)
            if current is None:
                stored = await tx.page_configs.upsert(
                    pid,
                    merchant_code=merchant,
                    api_key_encrypted=self.box.encrypt(api_key) if api_key else None,
                    checkout_prefix=prefix,
                    now=now,
                    only_if_missing=True,
                )
            elif merchant is None and api_key is None and prefix is None:
                stored = current
            else:
                stored = await tx.page_configs.upsert(
                    pid,
                    merchant_code=merchant if merchant is not None else current.merchant_code,
                    api_key_encrypted=(
                        self.box.encrypt(api_key) if api_key else current.api_key_encrypted
                    ),
                    checkout_prefix=prefix if prefix is not None else current.checkout_prefix,
                    now=now,
                )
        return public_view(pid, stored)

    async def attempt_account(self, page_id: int | None) -> tuple[AccountRef, str]:
        """The account a new checkout for the page is made with, as a payment attempt
        records it (its key encrypted), and the page's reference prefix."""
        account = await self.account_for(page_id)
        credentials = account.credentials
        name = f"page:{page_id}" if account.source == "page" else "site"
        token = self._attempt_tokens.get(credentials.api_key)
        if token is None:
            if len(self._attempt_tokens) >= _ATTEMPT_TOKENS:
                self._attempt_tokens.clear()
            token = self.box.encrypt(credentials.api_key)
            self._attempt_tokens[credentials.api_key] = token
        ref = AccountRef(name, credentials.merchant_code, token)
        return ref, account.checkout_prefix

    async def first_credentials(
        self, ref: AccountRef, order_page_id: int | None
    ) -> PaymentCredentials:
        """What ``credentials_for`` would try first: the key the checkout is made with when it
        can be read (then the page's current settings, which would only come after it, are
        not read), else the first of ``credentials_for``."""
        if ref.key_token:
            key = self.box.decrypt(ref.key_token)
            if key:
                return PaymentCredentials(ref.merchant_code, key)
        [first, *_] = await self.credentials_for(ref, order_page_id)
        return first

    async def credentials_for(
        self, ref: AccountRef, order_page_id: int | None
    ) -> list[PaymentCredentials]:
        """How to reach a checkout made with ``ref``: the key it was made with, then the
        account's current key when the seller has replaced it for the same merchant.

        Never another merchant's account. Raises ``PaymentProviderUnavailable`` when no
        key for that merchant can be read.
        """
        candidates: list[PaymentCredentials] = []
        if ref.key_token:
            key = self.box.decrypt(ref.key_token)
            if key:
                candidates.append(PaymentCredentials(ref.merchant_code, key))
            else:
                log.error(
                    "the SumUp key stored with a %s checkout cannot be decrypted", ref.account
                )
        if ref.account.startswith("page:"):
            page_id: int | None = int(ref.account.split(":", 1)[1])
        elif not ref.merchant_code:
            page_id = order_page_id  # an attempt from before attempts kept their account
        else:
            page_id = None
        try:
            current: PaymentAccount | None = await self.account_for(page_id)
        except PaymentProviderUnavailable:
            current = None
        if current is not None:
            same_merchant = not ref.merchant_code or (
                current.credentials.merchant_code == ref.merchant_code
            )
            if same_merchant and current.credentials not in candidates:
                candidates.append(current.credentials)
        if not candidates:
            raise PaymentProviderUnavailable(
                "This order's payment account cannot be reached just now; the co-op has been told.",
                account=ref.account,
            )
        return candidates


def _page_id(raw: object) -> int:
    page_id = positive_id(raw)
    if page_id is None:
        raise BadInput("page_id must be a positive whole number.")
    return page_id


def _optional(raw: object, pattern: re.Pattern[str], name: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not pattern.match(raw):
        raise BadInput(f"{name} has characters SumUp does not accept.")
    return raw
