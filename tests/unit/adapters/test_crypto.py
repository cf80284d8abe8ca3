from __future__ import annotations

import pytest

from rose_cart.adapters.crypto import SecretBox

OLD = "the secret every page key was stored with until now"
NEW = "the secret that replaces it, newest first in the list"

#: ``sup_sk_bakery`` as stored with the secret ``LEGACY`` before several secrets could be
#: configured: the derivation from a secret must never change, or stored keys are lost.
LEGACY = "a secret stored before key rotation existed"
STORED_BEFORE = (
    "gAAAAABrAfqqqCKznqpisXePTXg_3_PpLj4fFtq4eNxE9M3-8Af7rzBglmeoHQpg-7xZVogWfJvpLAjVKy-3ac5"
    "Mae8_vJlYgQ=="
)


def test_keys_stored_before_rotation_existed_still_decrypt() -> None:
    assert SecretBox(LEGACY).decrypt(STORED_BEFORE) == "sup_sk_bakery"
    assert SecretBox(NEW, LEGACY).decrypt(STORED_BEFORE) == "sup_sk_bakery"


def test_the_newest_secret_encrypts_and_any_secret_decrypts() -> None:
    stored_with_old = SecretBox(OLD).encrypt("sup_sk_garden")
    both = SecretBox(NEW, OLD)
    assert both.decrypt(stored_with_old) == "sup_sk_garden"
    written_now = both.encrypt("sup_sk_market")
    # Once the old secret is dropped, what was written since still reads.
    assert SecretBox(NEW).decrypt(written_now) == "sup_sk_market"
    assert SecretBox(OLD).decrypt(written_now) is None


def test_rotate_re_encrypts_with_the_newest_secret() -> None:
    stored_with_old = SecretBox(OLD).encrypt("sup_sk_garden")
    rotated = SecretBox(NEW, OLD).rotate(stored_with_old)
    assert rotated is not None and rotated != stored_with_old
    assert SecretBox(NEW).decrypt(rotated) == "sup_sk_garden"


def test_what_no_configured_secret_reads_is_none_never_an_error() -> None:
    box = SecretBox(NEW, OLD)
    lost = SecretBox("a secret nobody kept").encrypt("sup_sk_lost")
    assert box.decrypt(lost) is None and box.rotate(lost) is None
    assert box.decrypt("not a token") is None and box.rotate("not a token") is None
    tampered = box.encrypt("sup_sk_garden")[:-4] + "AAA="
    assert box.decrypt(tampered) is None and box.rotate(tampered) is None


def test_a_box_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        SecretBox()
