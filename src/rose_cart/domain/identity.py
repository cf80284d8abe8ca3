"""Who a cart belongs to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CartIdentity:
    """A logged-in user, or an anonymous visitor's random session id.

    When both are known the user wins; the session's lines are adopted on login.
    """

    user_id: int | None = None
    session_id: str | None = None

    @property
    def is_known(self) -> bool:
        return self.user_id is not None or bool(self.session_id)

    @property
    def key(self) -> str:
        """A stable string for cache keys."""
        if self.user_id is not None:
            return f"u:{self.user_id}"
        return f"s:{self.session_id}" if self.session_id else "-"

    def owner(self) -> CartIdentity:
        """The identity that owns cart lines and orders: the user if logged in."""
        if self.user_id is not None:
            return CartIdentity(user_id=self.user_id)
        return CartIdentity(session_id=self.session_id)
