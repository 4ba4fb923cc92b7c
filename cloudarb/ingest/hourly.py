"""Repair of the hourly price table for stores written before every tick path kept it.

Every writer of ticks now goes through `cloudarb.ingest.bulk` (provider refreshes, `cloudarb catalog
import`, `cloudarb db seed` and the embedded first run), which keeps ``price_ticks_hourly`` current.
Catalog imports and seeds used to store ticks without their hourly rows, so such a store answers hourly
and daily history with nothing, and importing the same file again cannot mend it (its ticks are stored
already, so none is new). `backfill` builds the hourly rows of series that have ticks but none at all,
from exactly their stored ticks. With TimescaleDB the continuous aggregate derives the hourly rows from
the ticks, so there is nothing to repair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session

from cloudarb.db.models import PriceSeries, PriceTick, PriceTickHourly
from cloudarb.ingest.bulk import sqlite_merge_hourly
from cloudarb.ingest.timescale import uses_timescale

log = logging.getLogger(__name__)

_KEYS_CHUNK = 500
_SERIES_CHUNK = 100
"""Series per batch of the SQLite rebuild (their ticks are read into memory at once)."""

_PG_REBUILD = """
INSERT INTO price_ticks_hourly (series_id, bucket, open, high, low, close, open_at, close_at, ticks)
SELECT series_id, date_bin(INTERVAL '1 hour', observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       (array_agg(price_per_hour ORDER BY observed_at))[1], max(price_per_hour), min(price_per_hour),
       (array_agg(price_per_hour ORDER BY observed_at DESC))[1], min(observed_at), max(observed_at), count(*)
FROM price_ticks WHERE series_id = ANY(:ids) GROUP BY 1, 2
ON CONFLICT (series_id, bucket) DO NOTHING
"""


def series_without_hourly(session: Session, offer_keys: Sequence[str] | None = None) -> list[int]:
    """Ids of the series (of ``offer_keys``, or all) that have ticks but no hourly row."""
    s = PriceSeries
    stmt = select(s.id).where(
        exists().where(PriceTick.series_id == s.id), ~exists().where(PriceTickHourly.series_id == s.id)
    )
    if offer_keys is None:
        return list(session.scalars(stmt.order_by(s.id)))
    keys = sorted(set(offer_keys))
    out: list[int] = []
    for i in range(0, len(keys), _KEYS_CHUNK):
        out.extend(session.scalars(stmt.where(s.offer_key.in_(keys[i : i + _KEYS_CHUNK]))))
    return sorted(out)


def backfill(session: Session, offer_keys: Sequence[str] | None = None) -> int:
    """Build the hourly rows of every series (of ``offer_keys``, or all) that has ticks but no hourly
    row, from its stored ticks; returns how many series were filled (0 on TimescaleDB)."""
    if uses_timescale(session):
        return 0
    ids = series_without_hourly(session, offer_keys)
    if not ids:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_PG_REBUILD), {"ids": ids})
    else:
        for i in range(0, len(ids), _SERIES_CHUNK):
            chunk = ids[i : i + _SERIES_CHUNK]
            ticks = session.execute(
                select(PriceTick.series_id, PriceTick.observed_at, PriceTick.price_per_hour)
                .where(PriceTick.series_id.in_(chunk))
            )
            sqlite_merge_hourly(session, [(sid, ts, price) for sid, ts, price in ticks])
    log.info("hourly price rows rebuilt from stored ticks", extra={"series": len(ids)})
    return len(ids)


def heal_if_empty(session: Session) -> int:
    """`backfill` everything when ticks exist but the hourly table is empty (a store seeded or imported
    into before the import path kept it): two index probes when there is nothing to do."""
    if session.execute(select(PriceTick.series_id).limit(1)).first() is None or uses_timescale(session):
        return 0
    if session.execute(select(PriceTickHourly.series_id).limit(1)).first() is not None:
        return 0
    return backfill(session)
