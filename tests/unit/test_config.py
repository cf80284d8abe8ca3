from __future__ import annotations

from typing import Any

import pytest

from rose_cart.app import create_app
from rose_cart.config import ConfigError, Settings, load_settings
from tests.web.conftest import make_web

#: What a real deployment sets: split mode, SumUp's API with the co-op's own account,
#: three long and different secrets, no development login and no demo data.
PRODUCTION: dict[str, Any] = {
    "env": "production",
    "mode": "split",
    "secret_key": "s" * 32,
    "internal_secret": "i" * 32,
    "encryption_key": "e" * 32,
    "dev_login": False,
    "demo_data": False,
    "sumup_base_url": "https://api.sumup.com",
    "sumup_api_key": "sup_sk_live_coop",
    "sumup_merchant_code": "MCOOP123",
    "public_url": "https://cart.coop.example",
}


def production(**changes: Any) -> Settings:
    return Settings(**{**PRODUCTION, **changes})


def test_defaults_are_the_standalone_demo() -> None:
    settings = load_settings({})
    assert settings.standalone and settings.dev_login and settings.port == 8002
    assert settings.database_url.startswith("sqlite+aiosqlite:///var/")
    assert settings.payments_base_url == "http://127.0.0.1:8002/sandbox/sumup"
    assert not settings.session_cookie_secure  # the demo runs on plain http://127.0.0.1
    settings.check()


def test_environment_overrides() -> None:
    settings = load_settings(
        {
            "CART_PORT": "9000",
            "CART_DEV_LOGIN": "off",
            "CART_SUMUP_BASE_URL": "https://api.sumup.com",
        }
    )
    assert settings.port == 9000 and not settings.dev_login
    assert settings.payments_base_url == "https://api.sumup.com" and not settings.uses_sandbox


def test_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings({"CART_PORT": "eighty"})
    with pytest.raises(ConfigError):
        load_settings({"CART_MODE": "both"})


def test_production_refuses_default_secrets_and_dev_login() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(Settings(env="production"))
    with pytest.raises(ConfigError, match="DEV_LOGIN"):
        production(dev_login=True).check()
    production().check()


@pytest.mark.parametrize(
    "raw", ["Production", " production", "PRODUCTION", "production\n", " Production "]
)
def test_a_production_environment_written_differently_is_still_production(raw: str) -> None:
    settings = load_settings({"CART_ENV": raw})
    assert settings.env == "production"
    # Default secrets, the dev login and the sandbox: refused, not waved through.
    with pytest.raises(ConfigError, match="CART_SECRET_KEY"):
        settings.check()


@pytest.mark.parametrize("raw", ["prod", "live", "staging", "dev", " ", ""])
def test_an_unknown_environment_is_refused_not_taken_for_development(raw: str) -> None:
    with pytest.raises(ConfigError, match="CART_ENV"):
        load_settings({"CART_ENV": raw})
    with pytest.raises(ConfigError, match="CART_ENV"):
        Settings(env=raw).check()


def test_production_refuses_pretend_money() -> None:
    # Real secrets and the dev login off, but the standalone defaults left as they are:
    # the built-in sandbox would mark orders paid with no money taken.
    env = {
        "CART_ENV": "production",
        "CART_SECRET_KEY": "s" * 32,
        "CART_INTERNAL_SECRET": "i" * 32,
        "CART_ENCRYPTION_KEY": "e" * 32,
        "CART_DEV_LOGIN": "off",
    }
    with pytest.raises(ConfigError) as refused:
        load_settings(env).check()
    for variable in (
        "CART_MODE",
        "CART_SUMUP_BASE_URL",
        "CART_SUMUP_API_KEY",
        "CART_SUMUP_MERCHANT_CODE",
        "CART_DEMO_DATA",
    ):
        assert variable in str(refused.value)


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"mode": "standalone"}, "CART_MODE"),
        ({"sumup_base_url": ""}, "CART_SUMUP_BASE_URL"),
        ({"sumup_base_url": "https://cart.example/sandbox/sumup"}, "CART_SUMUP_BASE_URL"),
        ({"sumup_base_url": "http://127.0.0.1:8002/sandbox/sumup/"}, "CART_SUMUP_BASE_URL"),
        ({"sumup_base_url": "http://api.sumup.com"}, "CART_SUMUP_BASE_URL"),
        ({"sumup_api_key": "sup_sk_sandbox"}, "CART_SUMUP_API_KEY"),
        ({"sumup_api_key": ""}, "CART_SUMUP_API_KEY"),
        ({"sumup_merchant_code": "MSANDBOX"}, "CART_SUMUP_MERCHANT_CODE"),
        ({"sumup_merchant_code": ""}, "CART_SUMUP_MERCHANT_CODE"),
        ({"demo_data": True}, "CART_DEMO_DATA"),
        ({"secret_key": "s" * 31}, "CART_SECRET_KEY must be at least 32"),
        ({"internal_secret": ""}, "CART_INTERNAL_SECRET must be set"),
        ({"encryption_key": "dev-only-page-config-key"}, "CART_ENCRYPTION_KEY must be set"),
        ({"internal_secret": "s" * 32}, "CART_SECRET_KEY and CART_INTERNAL_SECRET"),
        ({"encryption_key": "i" * 32}, "CART_INTERNAL_SECRET and CART_ENCRYPTION_KEY"),
        ({"encryption_keys": ("short", "e" * 32)}, "CART_ENCRYPTION_KEYS"),
        ({"encryption_keys": ("s" * 32, "e" * 32)}, "CART_SECRET_KEY and CART_ENCRYPTION_KEYS"),
        ({"secure_cookies": False}, "CART_SECURE_COOKIES"),
        ({"public_url": ""}, "CART_PUBLIC_URL"),
        ({"public_url": "http://cart.coop.example"}, "CART_PUBLIC_URL"),
        ({"encryption_keys": ("n" * 32, "s" * 32)}, "CART_ENCRYPTION_KEYS must not list CART_SE"),
        ({"encryption_keys": ("n" * 32, "i" * 32)}, "CART_ENCRYPTION_KEYS must not list CART_IN"),
    ],
)
def test_production_names_what_to_fix(changes: dict[str, Any], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        production(**changes).check()


def test_every_problem_is_named_at_once_and_only_once() -> None:
    with pytest.raises(ConfigError) as refused:
        production(dev_login=True, demo_data=True, secret_key="short").check()
    message = str(refused.value)
    assert "CART_DEV_LOGIN" in message and "CART_DEMO_DATA" in message
    assert "CART_SECRET_KEY" in message
    with pytest.raises(ConfigError) as unset:
        production(secret_key="", internal_secret="").check()
    problems = str(unset.value).splitlines()[1:]
    assert problems == [
        "  - CART_SECRET_KEY must be set to a real secret in production",
        "  - CART_INTERNAL_SECRET must be set to a real secret in production",
    ]


async def test_production_session_cookies_are_secure(database_url: str) -> None:
    web = make_web(database_url, **PRODUCTION)
    try:
        response = await web.client.post("/api/v1/cart/items", json={"product_id": 1})
        assert response.status_code == 201
        cookie = response.headers.get("Set-Cookie", "")
        assert "rose_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    finally:
        await web.app.extensions["rose_cart"].aclose()


def test_encryption_keys_are_newest_first_and_the_one_key_form_still_works() -> None:
    settings = load_settings({"CART_ENCRYPTION_KEYS": " new-secret , old-secret "})
    assert settings.encryption_secrets == ("new-secret", "old-secret")
    assert load_settings({"CART_ENCRYPTION_KEY": "only"}).encryption_secrets == ("only",)
    production(encryption_key="", encryption_keys=("n" * 32, "e" * 32)).check()


def test_an_old_weak_encryption_key_may_stay_while_it_is_rotated_away() -> None:
    production(encryption_keys=("n" * 32, "old-and-short")).check()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CART_ENCRYPTION_KEY": "one", "CART_ENCRYPTION_KEYS": "two,one"}, "not both"),
        ({"CART_ENCRYPTION_KEYS": "two,,one"}, "empty entry"),
        ({"CART_ENCRYPTION_KEYS": "two,one,"}, "empty entry"),
    ],
)
def test_unclear_encryption_keys_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_the_same_encryption_key_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="same secret twice"):
        load_settings({"CART_ENCRYPTION_KEYS": "two,one,two"}).check()
