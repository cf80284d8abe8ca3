from __future__ import annotations

import pytest

from rose_cart.app import create_app
from rose_cart.config import ConfigError, Settings, load_settings


def test_defaults_are_the_standalone_demo() -> None:
    settings = load_settings({})
    assert settings.standalone and settings.dev_login and settings.port == 8002
    assert settings.database_url.startswith("sqlite+aiosqlite:///var/")
    assert settings.payments_base_url == "http://127.0.0.1:8002/sandbox/sumup"


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
    good = Settings(
        env="production",
        secret_key="a" * 32,
        internal_secret="b" * 32,
        encryption_key="c" * 32,
        dev_login=True,
    )
    with pytest.raises(ConfigError, match="DEV_LOGIN"):
        good.check()
    good.with_(dev_login=False).check()


def test_encryption_keys_are_newest_first_and_the_one_key_form_still_works() -> None:
    settings = load_settings({"CART_ENCRYPTION_KEYS": " new-secret , old-secret "})
    assert settings.encryption_secrets == ("new-secret", "old-secret")
    assert load_settings({"CART_ENCRYPTION_KEY": "only"}).encryption_secrets == ("only",)


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
