from __future__ import annotations

import pytest

from rose_cart.domain.ids import positive_id


@pytest.mark.parametrize("raw,expected", [(7, 7), ("42", 42), (" 3 ", 3), ("999999999", 999999999)])
def test_positive_ids(raw: object, expected: int) -> None:
    assert positive_id(raw) == expected


@pytest.mark.parametrize(
    "raw", [0, -1, "0", "-4", "1.5", 2.0, True, None, "", "abc", "1000000000", 10**12, "１２"]
)
def test_not_ids(raw: object) -> None:
    assert positive_id(raw) is None
