"""Typed settings from ``CART_*`` environment variables, with standalone defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_SECRET = "dev-only-secret-change-me"  # noqa: S105 - the point is to refuse it
DEFAULT_ENCRYPTION_KEY = "dev-only-page-config-key"


class ConfigError(RuntimeError):
    """Settings that must not be used to start the service."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


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
    dev_login: bool = True
    sumup_base_url: str = ""  # empty: the built-in sandbox at <public_url>/sandbox/sumup
    sumup_api_key: str = "sup_sk_sandbox"
    sumup_merchant_code: str = "MSANDBOX"
    sumup_checkout_prefix: str = "rose"
    sumup_timeout_seconds: float = 10.0
    product_cache_seconds: int = 60
    summary_cache_seconds: int = 300
    reconcile_interval_seconds: float = 30.0
    run_reconciler: bool = True
    checkout_valid_minutes: int = 30
    relay_interval_seconds: float = 5.0
    admin_users: str = ""
    demo_data: bool = True
    migrate_on_start: bool = True
    secure_cookies: bool = False

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

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def check(self) -> None:
        """Refuse settings that are unsafe in production."""
        if self.env != "production":
            return
        for name in ("secret_key", "internal_secret", "encryption_key"):
            if getattr(self, name) in {DEFAULT_SECRET, DEFAULT_ENCRYPTION_KEY, ""}:
                raise ConfigError(f"CART_{name.upper()} must be set to a real secret in production")
        if self.dev_login:
            raise ConfigError("CART_DEV_LOGIN must be off in production")


_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MODE": ("mode", str),
    "ENV": ("env", str),
    "HOST": ("host", str),
    "PORT": ("port", int),
    "PUBLIC_URL": ("public_url", str),
    "DATABASE_URL": ("database_url", str),
    "REDIS_URL": ("redis_url", str),
    "SECRET_KEY": ("secret_key", str),
    "INTERNAL_SECRET": ("internal_secret", str),
    "ENCRYPTION_KEY": ("encryption_key", str),
    "DEV_LOGIN": ("dev_login", _bool),
    "SUMUP_BASE_URL": ("sumup_base_url", str),
    "SUMUP_API_KEY": ("sumup_api_key", str),
    "SUMUP_MERCHANT_CODE": ("sumup_merchant_code", str),
    "SUMUP_CHECKOUT_PREFIX": ("sumup_checkout_prefix", str),
    "SUMUP_TIMEOUT_SECONDS": ("sumup_timeout_seconds", float),
    "PRODUCT_CACHE_SECONDS": ("product_cache_seconds", int),
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
    values: dict[str, Any] = {}
    for suffix, (name, convert) in _FIELDS.items():
        raw = env.get(f"CART_{suffix}")
        if raw is not None and raw != "":
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise ConfigError(f"CART_{suffix}: {exc}") from exc
    settings = Settings(**values)
    if settings.mode not in {"standalone", "split"}:
        raise ConfigError("CART_MODE must be 'standalone' or 'split'")
    if not 1 <= settings.checkout_valid_minutes <= 24 * 60:
        raise ConfigError("CART_CHECKOUT_VALID_MINUTES must be between 1 and 1440")
    return settings
