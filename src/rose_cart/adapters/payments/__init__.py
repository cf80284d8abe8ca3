"""Payment provider adapters behind the ``PaymentProvider`` port."""

from __future__ import annotations

from rose_cart.adapters.payments.sumup import SumUpProvider

__all__ = ["SumUpProvider"]
