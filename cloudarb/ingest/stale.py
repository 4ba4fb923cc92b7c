"""Saying plainly when prices are old: the bundled snapshot's prices are months old on a fresh install,
and a plan priced on them should say so wherever it is shown (API, CLI, dashboard)."""

from __future__ import annotations

from datetime import datetime


def age_words(seconds: float) -> str:
    hours = seconds / 3600
    if hours < 48:
        return f"{hours:.0f} hours"
    return f"{hours / 24:.0f} days"


def stale_prices(newest: datetime | None, *, now: datetime, max_age_s: float) -> str | None:
    """A sentence when the newest price is older than ``max_age_s`` (CLOUDARB_PRICE_STALE_AFTER_S), else None."""
    if newest is None:
        return "no prices stored: run `cloudarb db seed` or `cloudarb catalog import`"
    age = (now - newest).total_seconds()
    if age <= max_age_s:
        return None
    return (
        f"the newest price is {age_words(age)} old (observed {newest:%Y-%m-%d %H:%M} UTC): plans and "
        "offers may not match what providers charge today; refresh prices (provider ingest or "
        "`cloudarb catalog import`)"
    )
