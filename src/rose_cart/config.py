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
    sumup_api_key: str = "sup_sk_sandbox"
    sumup_merchant_code: str = "MSANDBOX"
    sumup_checkout_prefix: str = "rose"
    sumup_timeout_seconds: float = 10.0
    product_cache_seconds: int = 60
    summary_cache_seconds: int = 300
    reconcile_interval_seconds: float = 30.0
    run_reconciler: bool = True
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
    def uses_sandbox(self) -> bool:
        return self.standalone and not self.sumup_base_url

    @property
    def encryption_secrets(self) -> tuple[str, ...]:
        """The secrets that encrypt page keys at rest, newest (the one that encrypts) first."""
        return self.encryption_keys or (self.encryption_key,)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def check(self) -> None:
        """Refuse settings that are unsafe in production."""
        if not all(self.encryption_keys):
            raise ConfigError("CART_ENCRYPTION_KEYS has an empty entry")
        if len(set(self.encryption_keys)) != len(self.encryption_keys):
            raise ConfigError("CART_ENCRYPTION_KEYS lists the same secret twice")
        if self.env != "production":
            return
        for name in ("secret_key", "internal_secret"):
            if getattr(self, name) in {DEFAULT_SECRET, DEFAULT_ENCRYPTION_KEY, ""}:
                raise ConfigError(f"CART_{name.upper()} must be set to a real secret in production")
        name = "CART_ENCRYPTION_KEYS" if self.encryption_keys else "CART_ENCRYPTION_KEY"
        if self.encryption_secrets[0] in {DEFAULT_SECRET, DEFAULT_ENCRYPTION_KEY, ""}:
            raise ConfigError(f"{name} must be set to a real secret in production")
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
    "ENCRYPTION_KEYS": ("encryption_keys", _secrets),
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
    if "encryption_key" in values and "encryption_keys" in values:
        raise ConfigError(
            "set CART_ENCRYPTION_KEYS (newest first) or CART_ENCRYPTION_KEY (one key), not both"
        )
    settings = Settings(**values)
    if settings.mode not in {"standalone", "split"}:
        raise ConfigError("CART_MODE must be 'standalone' or 'split'")
    return settings
