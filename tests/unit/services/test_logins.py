from __future__ import annotations

from rose_cart.adapters.cache import InMemoryCache
from rose_cart.services.logins import LoginSessions, generation_key


async def test_a_logout_ends_every_earlier_login_and_only_those() -> None:
    logins = LoginSessions(InMemoryCache())
    laptop = await logins.start(7)
    phone = await logins.start(7)
    assert laptop == phone and await logins.is_current(7, laptop)
    assert not await logins.is_current(8, laptop)  # another user's cookie
    await logins.end(7)
    assert not await logins.is_current(7, laptop)
    again = await logins.start(7)
    assert again != laptop and await logins.is_current(7, again)
    assert not await logins.is_current(7, laptop)


async def test_a_lost_generation_logs_out_and_never_back_in() -> None:
    cache = InMemoryCache()
    logins = LoginSessions(cache)
    kept = await logins.start(7)
    await logins.end(7)
    await cache.delete(generation_key(7))  # evicted, flushed, restarted
    assert not await logins.is_current(7, kept)
    fresh = await logins.start(7)
    assert fresh != kept and not await logins.is_current(7, kept)


async def test_what_is_not_a_generation_is_not_current() -> None:
    logins = LoginSessions(InMemoryCache())
    await logins.start(7)
    for sent in [None, "", 3, "é", ["x"]]:
        assert not await logins.is_current(7, sent)
