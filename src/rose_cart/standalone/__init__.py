"""Standalone mode: reference siblings (market, events, blog, account) with demo data, and
the SumUp sandbox, all in the cart's own process. Never imported by services."""

from __future__ import annotations
