"""Series keys: ``price:<offer_key>`` (market data) and ``demand:<workload_id>`` (per organization)."""

from __future__ import annotations

from typing import Literal

Kind = Literal["price", "demand"]
KINDS: tuple[Kind, ...] = ("price", "demand")


def price_key(offer_key: str) -> str:
    return f"price:{offer_key}"


def demand_key(workload_id: str) -> str:
    return f"demand:{workload_id}"


def kind_of(series_key: str) -> Kind | None:
    """The kind a key names, or None when it has no known prefix."""
    prefix = series_key.split(":", 1)[0]
    return prefix if prefix in KINDS else None
