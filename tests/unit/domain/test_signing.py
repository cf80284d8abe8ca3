from __future__ import annotations

from rose_cart.domain.signing import sign, verify


def test_signature_round_trip_and_tamper() -> None:
    sig = sign("s3cret", "POST", "/internal/x", 1000, b'{"a":1}')
    assert verify("s3cret", "POST", "/internal/x", "1000", sig, b'{"a":1}', now=1010)
    assert not verify("s3cret", "POST", "/internal/x", "1000", sig, b'{"a":2}', now=1010)
    assert not verify("other", "POST", "/internal/x", "1000", sig, b'{"a":1}', now=1010)
    assert not verify("s3cret", "POST", "/internal/x", "1000", sig, b'{"a":1}', now=5000)
    assert not verify("s3cret", "POST", "/internal/x", None, sig, b"", now=1000)
