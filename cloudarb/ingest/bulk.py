"""The ingest write path: price ticks in bulk, the hourly aggregate, and the current-offers table.

`write_tick_columns` is the bulk path every writer ends in (`write_quotes` for provider refreshes,
`cloudarb catalog import` and `cloudarb db seed`, `write_ticks` for loose rows, bulk feeds such as the
simulator directly), so every stored tick is in the hourly table (`cloudarb.ingest.hourly` repairs
stores whose imports predate that). PostgreSQL: the batch is
COPYed in binary into session-temporary staging tables (the offer as a small index into the batch's
key table, mapped to its `PriceSeries` id on the server), then moved into ``price_ticks``: a plain
INSERT when every tick is newer than what its offer has, else ``INSERT ... ON CONFLICT DO NOTHING``,
so re-ingesting a batch adds nothing. Without TimescaleDB the hourly OHLC rows are merged into the
plain ``price_ticks_hourly`` table from exactly the ticks inserted; with TimescaleDB the continuous
aggregate does that (`cloudarb.ingest.timescale` refreshes the hours each ingest touched once it has
committed). SQLite takes the executemany path with the same semantics. Current offers move
forward in time only (an older quote arriving late stays history), and every move that changes a
price is returned by `write_quotes` as a `PriceChange` for the event stream.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, case, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.db.models import Offer, PriceTick, PriceTickHourly
from cloudarb.db.types import utcnow
from cloudarb.ingest import columns
from cloudarb.ingest.timescale import refresh_hourly_after_commit, uses_timescale
from cloudarb.storage.offers import quote_row, series_ids
from ingestion.schemas import PriceQuote

TickRow = tuple[str, datetime, float, int | None]
"""(offer_key, observed_at (aware UTC), price_per_hour, available_instances)."""

_SQLITE_CHUNK = 500
_OFFER_COLUMNS = (
    "offer_key", "provider", "seller", "region", "zone", "instance_type", "gpu_model", "gpu_model_raw", "gpu_model_known",
    "gpu_count", "vram_gb", "vcpus", "ram_gb", "spot", "price_per_hour", "price_per_gpu_hour", "capacity",
    "available_instances", "reliability", "observed_at",
)
"""The keys of `cloudarb.storage.offers.quote_row`, in a fixed order for COPY."""


@dataclass(frozen=True, kw_only=True)
class PriceChange:
    """An offer's current price moved (``old_price_per_hour`` is None for a new offer)."""

    offer_key: str
    provider: str
    region: str
    gpu_model: str
    instance_type: str
    spot: bool
    gpu_count: int
    old_price_per_hour: float | None
    new_price_per_hour: float
    observed_at: datetime


@dataclass(kw_only=True)
class WriteResult:
    quotes: int = 0
    ticks_inserted: int = 0
    offers_upserted: int = 0
    changes: list[PriceChange] = field(default_factory=list)


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------- ticks


def write_ticks(session: Session, ticks: Iterable[TickRow]) -> int:
    """Insert ticks that are not stored yet (and their hourly rows); returns how many were new."""
    rows = list(ticks)
    if session.get_bind().dialect.name == "postgresql":
        return write_tick_columns(session, columns.from_rows(rows), update_offers=False).ticks_inserted if rows else 0
    return _sqlite_write_ticks(session, rows)


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite value {value!r} in a price tick")
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_lines(rows: Iterable[Sequence[Any]]) -> Iterable[str]:
    """COPY text-format lines (for the small tables: offer rows, the per-offer summary of a batch)."""
    for row in rows:
        yield "\t".join(_copy_text(v) for v in row) + "\n"


@dataclass(frozen=True, kw_only=True)
class TickWriteResult:
    ticks: int
    ticks_inserted: int
    offers_updated: int


# Staging tables live for the session, emptied at commit; the offer is a small integer index into
# the batch's own key table (_ingest_keys), so the ticks travel as fixed-width binary COPY records.
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS _ingest_keys (idx integer NOT NULL, offer_key text NOT NULL, series_id integer, "
    "first_at timestamptz NOT NULL, last_at timestamptz NOT NULL, price_per_hour double precision NOT NULL, "
    "available_instances integer NOT NULL, capacity text NOT NULL) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS _ingest_ticks (idx integer NOT NULL, observed_at timestamptz NOT NULL, "
    "price_per_hour double precision NOT NULL, available_instances integer NOT NULL) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS _ingest_hourly (idx integer NOT NULL, bucket timestamptz NOT NULL, "
    "open double precision NOT NULL, high double precision NOT NULL, low double precision NOT NULL, "
    "close double precision NOT NULL, open_at timestamptz NOT NULL, close_at timestamptz NOT NULL, "
    "ticks integer NOT NULL) ON COMMIT DELETE ROWS",
)
_PG_TICKS_FROM_STAGE = (
    "INSERT INTO price_ticks (series_id, observed_at, price_per_hour, available_instances) "
    f"SELECT k.series_id, t.observed_at, t.price_per_hour, NULLIF(t.available_instances, {columns.NO_INSTANCES}) "
    "FROM _ingest_ticks t JOIN _ingest_keys k USING (idx)"
)
_PG_MOVE_TICKS = f"{_PG_TICKS_FROM_STAGE} ON CONFLICT (series_id, observed_at) DO NOTHING"
_PG_HOURLY_MERGE = """
ON CONFLICT (series_id, bucket) DO UPDATE SET
  open = CASE WHEN excluded.open_at < h.open_at THEN excluded.open ELSE h.open END,
  open_at = LEAST(excluded.open_at, h.open_at),
  close = CASE WHEN excluded.close_at > h.close_at THEN excluded.close ELSE h.close END,
  close_at = GREATEST(excluded.close_at, h.close_at),
  high = GREATEST(excluded.high, h.high),
  low = LEAST(excluded.low, h.low),
  ticks = h.ticks + excluded.ticks
"""
_PG_HOURLY_INTO = (
    "INSERT INTO price_ticks_hourly AS h (series_id, bucket, open, high, low, close, open_at, close_at, ticks)"
)
_PG_MOVE_TICKS_HOURLY = f"""
WITH ins AS ({_PG_MOVE_TICKS} RETURNING series_id, observed_at, price_per_hour),
agg AS (
{_PG_HOURLY_INTO}
SELECT series_id, date_bin(INTERVAL '1 hour', observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       (array_agg(price_per_hour ORDER BY observed_at))[1], max(price_per_hour), min(price_per_hour),
       (array_agg(price_per_hour ORDER BY observed_at DESC))[1], min(observed_at), max(observed_at), count(*)
FROM ins GROUP BY 1, 2
{_PG_HOURLY_MERGE}
RETURNING 1)
SELECT count(*) FROM ins
"""
_PG_APPEND_HOURLY = f"""
{_PG_HOURLY_INTO}
SELECT k.series_id, s.bucket, s.open, s.high, s.low, s.close, s.open_at, s.close_at, s.ticks
FROM _ingest_hourly s JOIN _ingest_keys k USING (idx)
{_PG_HOURLY_MERGE}
"""
_PG_OVERLAP = """
SELECT EXISTS (
  SELECT 1 FROM _ingest_keys k
  WHERE EXISTS (SELECT 1 FROM price_ticks p WHERE p.series_id = k.series_id AND p.observed_at >= k.first_at)
)
"""
_PG_NEW_SERIES = """
INSERT INTO price_series (offer_key)
SELECT k.offer_key FROM _ingest_keys k
WHERE NOT EXISTS (SELECT 1 FROM price_series s WHERE s.offer_key = k.offer_key)
ORDER BY k.offer_key
ON CONFLICT (offer_key) DO NOTHING
"""
_PG_SERIES_IDS = "UPDATE _ingest_keys k SET series_id = s.id FROM price_series s WHERE s.offer_key = k.offer_key"
_PG_CURRENT_PRICES = f"""
UPDATE offers AS o SET price_per_hour = k.price_per_hour,
  price_per_gpu_hour = k.price_per_hour / GREATEST(o.gpu_count, 1),
  available_instances = NULLIF(k.available_instances, {columns.NO_INSTANCES}), capacity = k.capacity,
  observed_at = k.last_at
FROM _ingest_keys k WHERE o.offer_key = k.offer_key AND k.last_at >= o.observed_at
"""


def _raw_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _pg_copy(session: Session, stage_sql: str, table: str, names: Sequence[str], lines: Iterable[str]) -> None:
    conn = _raw_connection(session)
    with conn.cursor() as cur:
        cur.execute(stage_sql)
        cur.execute(f"TRUNCATE {table}")
        with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            buf = io.StringIO()
            size = 0
            for line in lines:
                buf.write(line)
                size += 1
                if size >= 20_000:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
                    size = 0
            if size:
                copy.write(buf.getvalue())


def write_tick_columns(session: Session, cols: columns.TickColumns, *, update_offers: bool = True) -> TickWriteResult:
    """The bulk write path: store the ticks not stored yet, their hourly rows, and (``update_offers``)
    move each known offer's current price to its latest tick when that is newer than what it shows.

    Idempotent: a tick already stored (same offer and time) is skipped and adds nothing to the hourly
    rows. On PostgreSQL the transaction runs with ``synchronous_commit = off``: a crash may lose the
    last few hundred milliseconds of committed ticks (never corrupt them), which a price feed recovers
    by re-ingesting, and each commit stops waiting for its WAL flush. The usual append-only batch (every
    tick newer than what its offer has) takes a plain INSERT and the hourly rows computed column-wise on
    the client; any overlap takes ``INSERT ... ON CONFLICT DO NOTHING`` and aggregates exactly the rows
    it inserted. With TimescaleDB the continuous aggregate does the hourly rows.
    Offers that ``offers`` does not know are not created here (`write_quotes` creates them).
    """
    if not len(cols):
        return TickWriteResult(ticks=0, ticks_inserted=0, offers_updated=0)
    if session.get_bind().dialect.name != "postgresql":
        return _sqlite_write_columns(session, cols, update_offers=update_offers)
    span = columns.spans(cols)
    conn = _raw_connection(session)
    with conn.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SET LOCAL work_mem = '64MB'")  # the general path's hourly GROUP BY sorts in memory
        for stmt in _PG_STAGE:
            cur.execute(stmt)
        cur.execute("TRUNCATE _ingest_keys, _ingest_ticks")  # an earlier batch in this same transaction
        with cur.copy(
            "COPY _ingest_keys (idx, offer_key, first_at, last_at, price_per_hour, available_instances, capacity) "
            "FROM STDIN"
        ) as copy:
            copy.write("".join(copy_lines(
                (i, cols.offer_keys[i], columns.from_micros(lo), columns.from_micros(hi), p, a,
                 columns.CAPACITY_WORDS[c])
                for i, lo, hi, p, a, c in zip(
                    span.index.tolist(), span.first_us.tolist(), span.last_us.tolist(), span.price.tolist(),
                    span.available_instances.tolist(), span.capacity.tolist(), strict=True,
                )
            )))
        with cur.copy("COPY _ingest_ticks FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(columns.tick_copy_data(cols))
        # new offers get their series id (only those: ON CONFLICT alone would burn a sequence value
        # per known key and batch); the conflict clause covers a concurrent writer adding the same one
        cur.execute(_PG_NEW_SERIES)
        cur.execute(_PG_SERIES_IDS)
    inserted = _pg_insert_staged(session, cols)
    if inserted and uses_timescale(session):
        refresh_hourly_after_commit(session, columns.from_micros(int(span.first_us.min())),
                                    columns.from_micros(int(span.last_us.max())))
    updated = 0
    if update_offers:
        updated = int(session.execute(text(_PG_CURRENT_PRICES)).rowcount)  # type: ignore[attr-defined]
    return TickWriteResult(ticks=len(cols), ticks_inserted=inserted, offers_updated=updated)


def _pg_insert_staged(session: Session, cols: columns.TickColumns) -> int:
    if uses_timescale(session):
        return int(session.execute(text(_PG_MOVE_TICKS)).rowcount)  # type: ignore[attr-defined]
    if not session.execute(text(_PG_OVERLAP)).scalar_one():
        # Append-only (the usual case): a plain INSERT, and the hourly rows of the whole batch. A
        # duplicate inside the batch or a concurrent writer raises a unique violation and we take
        # the general path, whose hourly rows come from exactly the ticks it inserted.
        try:
            with session.begin_nested():
                inserted = int(session.execute(text(_PG_TICKS_FROM_STAGE)).rowcount)  # type: ignore[attr-defined]
                conn = _raw_connection(session)
                with conn.cursor() as cur:
                    cur.execute("TRUNCATE _ingest_hourly")
                    with cur.copy("COPY _ingest_hourly FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(columns.hourly_copy_data(columns.hourly(cols)))
                session.execute(text(_PG_APPEND_HOURLY))
            return inserted
        except IntegrityError:
            pass
    return int(session.execute(text(_PG_MOVE_TICKS_HOURLY)).scalar_one())


def _sqlite_write_columns(session: Session, cols: columns.TickColumns, *, update_offers: bool) -> TickWriteResult:
    us = cols.micros().tolist()
    keys = [cols.offer_keys[i] for i in cols.offer_index.tolist()]
    rows: list[TickRow] = [
        (k, columns.from_micros(t), p, None if a == columns.NO_INSTANCES else a)
        for k, t, p, a in zip(keys, us, cols.price_per_hour.tolist(), cols.available_instances.tolist(), strict=True)
    ]
    inserted = _sqlite_write_ticks(session, rows)
    updated = 0
    if update_offers:
        span = columns.spans(cols)
        table = cast(Table, Offer.__table__)
        for i, hi, p, a, c in zip(span.index.tolist(), span.last_us.tolist(), span.price.tolist(),
                                  span.available_instances.tolist(), span.capacity.tolist(), strict=True):
            at = columns.from_micros(hi)
            stmt = (
                table.update()
                .where(table.c.offer_key == cols.offer_keys[i], table.c.observed_at <= at)
                .values(price_per_hour=p, price_per_gpu_hour=p / func.max(table.c.gpu_count, 1),
                        available_instances=None if a == columns.NO_INSTANCES else a,
                        capacity=columns.CAPACITY_WORDS[c], observed_at=at)
            )
            updated += int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
    return TickWriteResult(ticks=len(cols), ticks_inserted=inserted, offers_updated=updated)


def _sqlite_write_ticks(session: Session, ticks: list[TickRow]) -> int:
    seen: dict[tuple[str, datetime], TickRow] = {}
    for t in ticks:
        seen.setdefault((t[0], t[1]), t)
    ids = series_ids(session, (k for k, _ in seen))
    rows = [
        {"series_id": ids[k], "observed_at": ts, "price_per_hour": p, "available_instances": a}
        for (k, ts, p, a) in seen.values()
    ]
    inserted: list[tuple[int, datetime, float]] = []
    if rows:
        table = cast(Table, PriceTick.__table__)
        stmt = (
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=["series_id", "observed_at"])
            .returning(table.c.series_id, table.c.observed_at, table.c.price_per_hour)
        )
        inserted = [(r[0], r[1], r[2]) for r in session.connection().execute(stmt, rows)]
    sqlite_merge_hourly(session, inserted)
    return len(inserted)


def sqlite_merge_hourly(session: Session, inserted: Sequence[tuple[int, datetime, float]]) -> None:
    """Merge (series id, observed_at, price) ticks, each stored exactly once, into the hourly OHLC rows."""
    groups: dict[tuple[int, datetime], dict[str, Any]] = {}
    for key, ts, price in inserted:
        g = groups.get((key, _hour(ts)))
        if g is None:
            groups[(key, _hour(ts))] = {
                "series_id": key, "bucket": _hour(ts), "open": price, "high": price, "low": price,
                "close": price, "open_at": ts, "close_at": ts, "ticks": 1,
            }
            continue
        g["ticks"] += 1
        g["high"] = max(g["high"], price)
        g["low"] = min(g["low"], price)
        if ts < g["open_at"]:
            g["open"], g["open_at"] = price, ts
        if ts > g["close_at"]:
            g["close"], g["close_at"] = price, ts
    rows = list(groups.values())
    if not rows:
        return
    hourly = cast(Table, PriceTickHourly.__table__)
    h = hourly.c
    stmt = sqlite.insert(hourly)
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["series_id", "bucket"],
        set_={
            "open": case((ex.open_at < h.open_at, ex.open), else_=h.open),
            "open_at": func.min(ex.open_at, h.open_at),
            "close": case((ex.close_at > h.close_at, ex.close), else_=h.close),
            "close_at": func.max(ex.close_at, h.close_at),
            "high": func.max(ex.high, h.high),
            "low": func.min(ex.low, h.low),
            "ticks": h.ticks + ex.ticks,
        },
    )
    session.connection().execute(stmt, rows)


# ---------------------------------------------------------------- quotes and current offers


def write_quotes(session: Session, quotes: Sequence[PriceQuote]) -> WriteResult:
    """Store quotes: new ticks, hourly rows, and the current offers; returns the price changes."""
    latest: dict[str, dict[str, Any]] = {}
    ticks: list[TickRow] = []
    for q in quotes:
        row = quote_row(q)
        ticks.append((row["offer_key"], row["observed_at"], row["price_per_hour"], row["available_instances"]))
        cur = latest.get(row["offer_key"])
        if cur is None or row["observed_at"] >= cur["observed_at"]:
            latest[row["offer_key"]] = row
    result = WriteResult(quotes=len(quotes))
    if not quotes:
        return result
    result.changes = _changes(session, latest)
    result.ticks_inserted = write_ticks(session, ticks)
    result.offers_upserted = _upsert_offers(session, list(latest.values()))
    return result


def _changes(session: Session, latest: dict[str, dict[str, Any]]) -> list[PriceChange]:
    keys = list(latest)
    current: dict[str, tuple[float, datetime]] = {}
    for i in range(0, len(keys), _SQLITE_CHUNK):
        stmt = select(Offer.offer_key, Offer.price_per_hour, Offer.observed_at).where(
            Offer.offer_key.in_(keys[i : i + _SQLITE_CHUNK])
        )
        current.update({k: (p, ts) for k, p, ts in session.execute(stmt)})
    changes = []
    for key, row in latest.items():
        old = current.get(key)
        if old is not None and (row["observed_at"] < old[1] or abs(row["price_per_hour"] - old[0]) < 1e-9):
            continue
        changes.append(
            PriceChange(
                offer_key=key, provider=row["provider"], region=row["region"], gpu_model=row["gpu_model"],
                instance_type=row["instance_type"], spot=row["spot"], gpu_count=row["gpu_count"],
                old_price_per_hour=old[0] if old else None, new_price_per_hour=row["price_per_hour"],
                observed_at=row["observed_at"],
            )
        )
    return changes


_PG_STAGE_OFFERS = (
    "CREATE TEMP TABLE IF NOT EXISTS _ingest_offers AS SELECT * FROM offers WITH NO DATA"
)


def _upsert_offers(session: Session, rows: list[dict[str, Any]]) -> int:
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        names = (*_OFFER_COLUMNS, "first_seen_at")
        lines = copy_lines([*(r[c] for c in _OFFER_COLUMNS), now] for r in rows)
        _pg_copy(session, _PG_STAGE_OFFERS, "_ingest_offers", names, lines)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _OFFER_COLUMNS if c != "offer_key")
        session.execute(
            text(
                f"INSERT INTO offers ({', '.join(names)}) SELECT {', '.join(names)} FROM _ingest_offers "
                f"ON CONFLICT (offer_key) DO UPDATE SET {updates} WHERE excluded.observed_at >= offers.observed_at"
            )
        )
        return len(rows)
    table = cast(Table, Offer.__table__)
    stmt = sqlite.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["offer_key"],
        set_={c: stmt.excluded[c] for c in _OFFER_COLUMNS if c != "offer_key"},
        where=stmt.excluded.observed_at >= table.c.observed_at,
    )
    if rows:
        session.connection().execute(stmt, [{**r, "first_seen_at": now} for r in rows])
    return len(rows)
