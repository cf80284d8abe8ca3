"""Typed settings from ``CART_*`` environment variables, with standalone defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SECRET = "dev-only-secret-change-me"  # noqa: S105 - the point is to refuse it
DEFAULT_ENCRYPTION_KEY = "dev-only-page-config-key"
#: The built-in sandbox's site account: it takes no money, so production refuses it.
SANDBOX_API_KEY = "sup_sk_sandbox"
SANDBOX_MERCHANT_CODE = "MSANDBOX"
MODES = ("standalone", "split")
ENVS = ("development", "production")
#: Production secrets are at least this long (a 256-bit key, written out).
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """Settings that must not be used to start the service."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _choice(*allowed: str) -> Callable[[str], str]:
    # "Production" or " production" must not quietly count as something else.
    def convert(value: str) -> str:
        normal = value.strip().lower()
        if normal not in allowed:
            raise ValueError(f"must be {' or '.join(map(repr, allowed))}, not {value!r}")
        return normal

    return convert


def _secrets(value: str) -> tuple[str, ...]:
    secrets = tuple(part.strip() for part in value.split(","))
    if not all(secrets):
        raise ValueError("has an empty entry; separate the secrets with single commas")
    return secrets


@dataclass(frozen=True)
class Settings:
    mode: str = "standalone"  # standalone | split
    env: str = "development"  # development | production
    host: str = "127.0.0.1"
    port: int = 8002
    public_url: str = ""  # how SumUp and browsers reach us; defaults to http://host:port
    database_url: str = "sqlite+aiosqlite:///var/cart.db"
    redis_url: str = ""  # empty: in-memory cache
    secret_key: str = DEFAULT_SECRET
    internal_secret: str = DEFAULT_SECRET
    encryption_key: str = DEFAULT_ENCRYPTION_KEY
    # Newest first; when set, it replaces ``encryption_key`` (see ``encryption_secrets``).
    encryption_keys: tuple[str, ...] = ()
    dev_login: bool = True
    sumup_base_url: str = ""  # empty: the built-in sandbox at <public_url>/sandbox/sumup
    sumup_api_key: str = SANDBOX_API_KEY
    sumup_merchant_code: str = SANDBOX_MERCHANT_CODE
    sumup_checkout_prefix: str = "rose"
    sumup_timeout_seconds: float = 10.0
    product_cache_seconds: int = 60
    # PostgreSQL connections per worker: as many as the requests a worker serves at once.
    db_pool_size: int = 20
    summary_cache_seconds: int = 300
    reconcile_interval_seconds: float = 30.0
    run_reconciler: bool = True
    checkout_valid_minutes: int = 30
    relay_interval_seconds: float = 5.0
    admin_users: str = ""
    demo_data: bool = True
    migrate_on_start: bool = True
    secure_cookies: bool | None = None  # None: on in production, off in development

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def standalone(self) -> bool:
        return self.mode == "standalone"

    @property
    def payments_base_url(self) -> str:
        return (self.sumup_base_url or f"{self.base_url}/sandbox/sumup").rstrip("/")

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.admin_users.split(",") if a.strip())

    @property
    def uses_sandbox(self) -> bool:
        return self.standalone and not self.sumup_base_url

    def multi_worker_problems(self) -> list[str]:
        """Why more than one worker process cannot serve with these settings: each would
        keep its own copy of something that must be shared."""
        problems = []
        if self.database_url.startswith("sqlite"):
            problems.append("SQLite has one writer (use PostgreSQL: CART_DATABASE_URL)")
        if not self.redis_url:
            problems.append(
                "the in-memory cache is per process, so one worker would serve a cart summary "
                "another has changed (use Redis: CART_REDIS_URL)"
            )
        if self.uses_sandbox:
            problems.append(
                "the built-in SumUp sandbox keeps its checkouts in its process (set "
                "CART_SUMUP_BASE_URL)"
            )
        return problems

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def encryption_secrets(self) -> tuple[str, ...]:
        """The secrets that encrypt page keys at rest, newest (the one that encrypts) first."""
        return self.encryption_keys or (self.encryption_key,)

    @property
    def session_cookie_secure(self) -> bool:
        if self.secure_cookies is None:
            return self.production
        return self.secure_cookies

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def check(self) -> None:
        """Refuse settings the service must not start with; production refuses far more.

        Raises ``ConfigError`` naming every variable to fix, not only the first.
        """
        problems = self._problems()
        if problems:
            raise ConfigError("refusing to start:\n  - " + "\n  - ".join(problems))

    def _problems(self) -> list[str]:
        if self.env not in ENVS:
            # An unknown environment must not count as development: that is where nothing
            # is checked.
            return [f"CART_ENV must be 'development' or 'production', not {self.env!r}"]
        problems: list[str] = []
        if self.mode not in MODES:
            problems.append(f"CART_MODE must be 'standalone' or 'split', not {self.mode!r}")
        if not all(self.encryption_keys):
            problems.append("CART_ENCRYPTION_KEYS has an empty entry")
        elif len(set(self.encryption_keys)) != len(self.encryption_keys):
            problems.append("CART_ENCRYPTION_KEYS lists the same secret twice")
        if self.production:
            problems += self._secret_problems()
            problems += self._pretend_money_problems()
            if self.dev_login:
                problems.append("CART_DEV_LOGIN must be off in production")
            if self.secure_cookies is False:
                problems.append(
                    "CART_SECURE_COOKIES cannot be off in production: the session cookie "
                    "must only travel over HTTPS (leave it unset)"
                )
            if urlsplit(self.public_url.strip()).scheme != "https":
                # Secure cookies never come back over http, and SumUp would send the payer
                # and the webhook's token there in the clear.
                problems.append(
                    "CART_PUBLIC_URL must be this service's https:// address in production"
                )
        return problems

    def _secret_problems(self) -> list[str]:
        # Only the newest encryption key is held to the rule: older ones only read what is
        # stored until `rose-cart rotate-keys` has re-encrypted it, and refusing them would
        # make it impossible to rotate away from a weak key.
        encryption = (
            ("CART_ENCRYPTION_KEYS (its first entry)", self.encryption_keys[0])
            if self.encryption_keys
            else ("CART_ENCRYPTION_KEY", self.encryption_key)
        )
        secrets = [
            ("CART_SECRET_KEY", self.secret_key),
            ("CART_INTERNAL_SECRET", self.internal_secret),
            encryption,
        ]
        problems: list[str] = []
        unset = {DEFAULT_SECRET, DEFAULT_ENCRYPTION_KEY, ""}
        for name, value in secrets:
            if value in unset:
                problems.append(f"{name} must be set to a real secret in production")
            elif len(value) < MIN_SECRET_LENGTH:
                problems.append(
                    f"{name} must be at least {MIN_SECRET_LENGTH} characters in production"
                )
        for index, (name, value) in enumerate(secrets):
            for other, other_value in secrets[index + 1 :]:
                # Two left unset are already named above.
                if value == other_value and value not in unset:
                    problems.append(f"{name} and {other} must be different secrets")
        # An older encryption key may be weak while it is rotated away, but never one of the
        # other secrets: whoever holds one would hold the page keys too.
        for name, value in secrets[:2]:
            if value not in unset and value in self.encryption_keys[1:]:
                problems.append(f"CART_ENCRYPTION_KEYS must not list {name}")
        return problems

    def _pretend_money_problems(self) -> list[str]:
        """What would let an order be marked paid with no money taken."""
        problems: list[str] = []
        if self.standalone:
            problems.append(
                "CART_MODE must be 'split' in production: standalone runs the reference "
                "siblings, their demo data and the SumUp sandbox"
            )
        url = self.sumup_base_url.strip()
        if not url:
            problems.append(
                "CART_SUMUP_BASE_URL must be set in production (https://api.sumup.com); "
                "unset, payments go to the built-in sandbox, which takes no money"
            )
        elif "/sandbox/" in urlsplit(url).path.lower().rstrip("/") + "/":
            problems.append("CART_SUMUP_BASE_URL must be SumUp's API, not the built-in sandbox")
        elif urlsplit(url).scheme != "https":
            problems.append("CART_SUMUP_BASE_URL must be an https:// URL in production")
        if self.sumup_api_key in {"", SANDBOX_API_KEY}:
            problems.append("CART_SUMUP_API_KEY must be the site's own SumUp API key in production")
        if self.sumup_merchant_code in {"", SANDBOX_MERCHANT_CODE}:
            problems.append(
                "CART_SUMUP_MERCHANT_CODE must be the site's own SumUp merchant code in production"
            )
        if self.demo_data:
            problems.append("CART_DEMO_DATA must be off in production")
        return problems


_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MODE": ("mode", _choice(*MODES)),
    "ENV": ("env", _choice(*ENVS)),
    "HOST": ("host", str),
    "PORT": ("port", int),
    "PUBLIC_URL": ("public_url", str),
    "DATABASE_URL": ("database_url", str),
    "REDIS_URL": ("redis_url", str),
    "SECRET_KEY": ("secret_key", str),
    "INTERNAL_SECRET": ("internal_secret", str),
    "ENCRYPTION_KEY": ("encryption_key", str),
    "ENCRYPTION_KEYS": ("encryption_keys", _secrets),
    "DEV_LOGIN": ("dev_login", _bool),
    "SUMUP_BASE_URL": ("sumup_base_url", str),
    "SUMUP_API_KEY": ("sumup_api_key", str),
    "SUMUP_MERCHANT_CODE": ("sumup_merchant_code", str),
    "SUMUP_CHECKOUT_PREFIX": ("sumup_checkout_prefix", str),
    "SUMUP_TIMEOUT_SECONDS": ("sumup_timeout_seconds", float),
    "PRODUCT_CACHE_SECONDS": ("product_cache_seconds", int),
    "DB_POOL_SIZE": ("db_pool_size", int),
    "SUMMARY_CACHE_SECONDS": ("summary_cache_seconds", int),
    "RECONCILE_INTERVAL_SECONDS": ("reconcile_interval_seconds", float),
    "RUN_RECONCILER": ("run_reconciler", _bool),
    "CHECKOUT_VALID_MINUTES": ("checkout_valid_minutes", int),
    "RELAY_INTERVAL_SECONDS": ("relay_interval_seconds", float),
    "ADMIN_USERS": ("admin_users", str),
    "DEMO_DATA": ("demo_data", _bool),
    "MIGRATE_ON_START": ("migrate_on_start", _bool),
    "SECURE_COOKIES": ("secure_cookies", _bool),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``CART_*`` variables; anything unset keeps its standalone default."""
    env = os.environ if environ is None else environ
    if env.get("CART_ENV") == "":
        # Set, but to nothing (an unset variable in a deployment template): that must not
        # quietly count as development, where nothing is checked.
        raise ConfigError("CART_ENV is set but empty: say 'development' or 'production'")
    values: dict[str, Any] = {}
    for suffix, (name, convert) in _FIELDS.items():
        raw = env.get(f"CART_{suffix}")
        if raw is not None and raw != "":
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise ConfigError(f"CART_{suffix}: {exc}") from exc
    if "encryption_key" in values and "encryption_keys" in values:
        raise ConfigError(
            "set CART_ENCRYPTION_KEYS (newest first) or CART_ENCRYPTION_KEY (one key), not both"
        )
    settings = Settings(**values)
    if not 1 <= settings.checkout_valid_minutes <= 24 * 60:
        raise ConfigError("CART_CHECKOUT_VALID_MINUTES must be between 1 and 1440")
    return settings
