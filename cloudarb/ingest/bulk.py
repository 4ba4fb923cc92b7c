"""The ingest write path: price ticks in bulk, the hourly aggregate, and the current-offers table.

PostgreSQL: ticks are COPYed into a session-temporary staging table, then moved into
``price_ticks`` with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, so re-ingesting a snapshot adds
nothing. Without TimescaleDB the same statement feeds the ticks it really inserted (``RETURNING``)
into the plain ``price_ticks_hourly`` table; with TimescaleDB the continuous aggregate does that.
SQLite takes the executemany path with the same semantics. Current offers move forward in time only
(an older quote arriving late stays history), and every move that changes a price is returned as a
`PriceChange` for the event stream.
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
from cloudarb.storage.offers import quote_row
from ingestion.schemas import PriceQuote

TickRow = tuple[str, datetime, float, int | None]
"""(offer_key, observed_at (aware UTC), price_per_hour, available_instances)."""

_SQLITE_CHUNK = 500
_OFFER_COLUMNS = (
    "offer_key", "provider", "region", "zone", "instance_type", "gpu_model", "gpu_model_raw", "gpu_model_known",
    "gpu_count", "vram_gb", "vcpus", "ram_gb", "spot", "price_per_hour", "price_per_gpu_hour", "capacity",
    "available_instances", "reliability", "observed_at",
)
"""The keys of `cloudarb.storage.offers.quote_row`, in a fixed order for COPY."""
_TIMESCALE_CACHE: dict[str, bool] = {}


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


def uses_timescale(session: Session) -> bool:
    """Whether ``price_ticks_hourly`` is a continuous aggregate (asked once per database URL)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    url = str(bind.engine.url)
    if url not in _TIMESCALE_CACHE:
        row = session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
        _TIMESCALE_CACHE[url] = row is not None
    return _TIMESCALE_CACHE[url]


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------- ticks


def write_ticks(session: Session, ticks: Iterable[TickRow]) -> int:
    """Insert ticks that are not stored yet (and their hourly rows); returns how many were new."""
    if session.get_bind().dialect.name == "postgresql":
        return _pg_write_ticks(session, ticks)
    return _sqlite_write_ticks(session, list(ticks))


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
    """COPY text-format lines; psycopg's per-row adaptation is the bottleneck at 100k rows/s."""
    for row in rows:
        yield "\t".join(_copy_text(v) for v in row) + "\n"


_PG_STAGE_TICKS = (
    "CREATE TEMP TABLE IF NOT EXISTS _ingest_ticks (offer_key text NOT NULL, observed_at timestamptz NOT NULL, "
    "price_per_hour double precision NOT NULL, available_instances integer) ON COMMIT DELETE ROWS"
)
_PG_MOVE_TICKS = (
    "INSERT INTO price_ticks (offer_key, observed_at, price_per_hour, available_instances) "
    "SELECT offer_key, observed_at, price_per_hour, available_instances FROM _ingest_ticks "
    "ON CONFLICT (offer_key, observed_at) DO NOTHING"
)
_PG_MOVE_TICKS_HOURLY = f"""
WITH ins AS ({_PG_MOVE_TICKS} RETURNING offer_key, observed_at, price_per_hour),
agg AS (
INSERT INTO price_ticks_hourly AS h (offer_key, bucket, open, high, low, close, open_at, close_at, ticks)
SELECT offer_key, date_bin(INTERVAL '1 hour', observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       (array_agg(price_per_hour ORDER BY observed_at))[1], max(price_per_hour), min(price_per_hour),
       (array_agg(price_per_hour ORDER BY observed_at DESC))[1], min(observed_at), max(observed_at), count(*)
FROM ins GROUP BY 1, 2
ON CONFLICT (offer_key, bucket) DO UPDATE SET
  open = CASE WHEN excluded.open_at < h.open_at THEN excluded.open ELSE h.open END,
  open_at = LEAST(excluded.open_at, h.open_at),
  close = CASE WHEN excluded.close_at > h.close_at THEN excluded.close ELSE h.close END,
  close_at = GREATEST(excluded.close_at, h.close_at),
  high = GREATEST(excluded.high, h.high),
  low = LEAST(excluded.low, h.low),
  ticks = h.ticks + excluded.ticks
RETURNING 1)
SELECT count(*) FROM ins
"""


_PG_OVERLAP = """
SELECT EXISTS (
  SELECT 1 FROM (SELECT offer_key, min(observed_at) AS lo FROM _ingest_ticks GROUP BY offer_key) AS s
  WHERE EXISTS (SELECT 1 FROM price_ticks p WHERE p.offer_key = s.offer_key AND p.observed_at >= s.lo)
)
"""
_PG_APPEND_TICKS = (
    "INSERT INTO price_ticks (offer_key, observed_at, price_per_hour, available_instances) "
    "SELECT offer_key, observed_at, price_per_hour, available_instances FROM _ingest_ticks"
)
_PG_APPEND_HOURLY = (
    _PG_MOVE_TICKS_HOURLY.split("agg AS (", 1)[1].rsplit("RETURNING 1)", 1)[0].replace("FROM ins", "FROM _ingest_ticks")
)


def _raw_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _pg_copy(session: Session, stage_sql: str, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    conn = _raw_connection(session)
    with conn.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '64MB'")  # the hourly GROUP BY sorts in memory, not on disk
        cur.execute(stage_sql)
        cur.execute(f"TRUNCATE {table}")
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
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


def _pg_write_ticks(session: Session, ticks: Iterable[TickRow]) -> int:
    return write_tick_lines(session, copy_lines(ticks))


def write_tick_lines(session: Session, lines: Iterable[str]) -> int:
    """PostgreSQL only: like `write_ticks`, from ready COPY text (chunks of whole lines: offer_key,
    observed_at, price_per_hour, available_instances; tab-separated, ``\\N`` for NULL). Bulk loaders
    that hold columnar data (the simulator's numpy batches) format it vectorised, skipping per-row Python."""
    _pg_copy(
        session, _PG_STAGE_TICKS, "_ingest_ticks",
        ("offer_key", "observed_at", "price_per_hour", "available_instances"), lines,
    )
    if uses_timescale(session):
        result = session.execute(text(_PG_MOVE_TICKS))
        return int(result.rowcount)  # type: ignore[attr-defined]
    if not session.execute(text(_PG_OVERLAP)).scalar_one():
        # Append-only fast path (the usual case: every tick is newer than what each offer has):
        # a plain INSERT, and the hourly rows straight from the staging table. A duplicate inside the
        # batch or a concurrent writer raises a unique violation and we take the general path.
        try:
            with session.begin_nested():
                inserted = session.execute(text(_PG_APPEND_TICKS)).rowcount  # type: ignore[attr-defined]
                session.execute(text(_PG_APPEND_HOURLY))
            return int(inserted)
        except IntegrityError:
            pass
    return int(session.execute(text(_PG_MOVE_TICKS_HOURLY)).scalar_one())


def _sqlite_write_ticks(session: Session, ticks: list[TickRow]) -> int:
    seen: dict[tuple[str, datetime], TickRow] = {}
    for t in ticks:
        seen.setdefault((t[0], t[1]), t)
    rows = [
        {"offer_key": k, "observed_at": ts, "price_per_hour": p, "available_instances": a}
        for (k, ts, p, a) in seen.values()
    ]
    inserted: list[tuple[str, datetime, float]] = []
    if rows:
        table = cast(Table, PriceTick.__table__)
        stmt = (
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=["offer_key", "observed_at"])
            .returning(table.c.offer_key, table.c.observed_at, table.c.price_per_hour)
        )
        inserted = [(r[0], r[1], r[2]) for r in session.connection().execute(stmt, rows)]
    _sqlite_hourly(session, inserted)
    return len(inserted)


def _sqlite_hourly(session: Session, inserted: Sequence[tuple[str, datetime, float]]) -> None:
    groups: dict[tuple[str, datetime], dict[str, Any]] = {}
    for key, ts, price in inserted:
        g = groups.get((key, _hour(ts)))
        if g is None:
            groups[(key, _hour(ts))] = {
                "offer_key": key, "bucket": _hour(ts), "open": price, "high": price, "low": price,
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
        index_elements=["offer_key", "bucket"],
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
        columns = (*_OFFER_COLUMNS, "first_seen_at")
        lines = copy_lines([*(r[c] for c in _OFFER_COLUMNS), now] for r in rows)
        _pg_copy(session, _PG_STAGE_OFFERS, "_ingest_offers", columns, lines)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _OFFER_COLUMNS if c != "offer_key")
        session.execute(
            text(
                f"INSERT INTO offers ({', '.join(columns)}) SELECT {', '.join(columns)} FROM _ingest_offers "
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
