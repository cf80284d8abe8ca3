"""HTTP layer: parse, call a service, render. No business rules live here."""

from __future__ import annotations
