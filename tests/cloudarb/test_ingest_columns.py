"""The columnar write path's client-side parts (hourly OHLC, per-offer spans, binary COPY records)
and `write_tick_columns` on SQLite."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models import Offer, PriceTick, PriceTickHourly
from cloudarb.ingest import bulk, columns
from cloudarb.storage import offers as offer_store
from ingestion.schemas import PriceQuote

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def batch(rows: list[tuple[int, int, float]], keys: list[str], cap: int = 0) -> columns.TickColumns:
    """rows: (offer index, seconds after T0, price)."""
    return columns.TickColumns(
        offer_keys=keys,
        offer_index=np.array([r[0] for r in rows], dtype=np.int32),
        observed_at=np.array([np.datetime64(int(T0.timestamp()) + r[1], "s") for r in rows]),
        price_per_hour=np.array([r[2] for r in rows], dtype=np.float64),
        available_instances=np.full(len(rows), columns.NO_INSTANCES, dtype=np.int32),
        capacity=np.full(len(rows), cap, dtype=np.int8),
    )


def naive_hourly(rows: list[tuple[int, int, float]]) -> list[tuple[int, int, float, float, float, float, int]]:
    groups: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for idx, sec, price in rows:
        groups.setdefault((idx, (int(T0.timestamp()) + sec) // 3600), []).append((sec, price))
    out = []
    for (idx, hour), pts in sorted(groups.items()):
        pts.sort()
        prices = [p for _, p in pts]
        out.append((idx, hour * 3600, pts[0][1], max(prices), min(prices), pts[-1][1], len(pts)))
    return out


def test_hourly_matches_a_row_by_row_recomputation_whatever_the_row_order() -> None:
    rng = np.random.default_rng(7)
    rows = [(int(i), int(s), float(p)) for i, s, p in zip(
        rng.integers(0, 5, 400), rng.choice(5 * 86400, 400, replace=False), rng.uniform(1, 3, 400).round(4),
        strict=True)]
    h = columns.hourly(batch(rows, [f"k{i}" for i in range(5)]))
    got = list(zip(h.index.tolist(), (h.bucket_us // 1_000_000).tolist(), h.open.tolist(), h.high.tolist(),
                   h.low.tolist(), h.close.tolist(), h.ticks.tolist(), strict=True))
    assert got == naive_hourly(rows)
    assert (h.open_us <= h.close_us).all() and (h.open_us // 3_600_000_000 * 3_600_000_000 == h.bucket_us).all()


def test_spans_give_first_and_last_tick_per_offer() -> None:
    rows = [(1, 600, 2.0), (0, 300, 5.0), (1, 0, 1.0), (0, 900, 4.0), (1, 300, 3.0)]
    s = columns.spans(batch(rows, ["a", "b"]))
    assert s.index.tolist() == [0, 1]
    assert (s.first_us // 1_000_000 - int(T0.timestamp())).tolist() == [300, 0]
    assert (s.last_us // 1_000_000 - int(T0.timestamp())).tolist() == [900, 600]
    assert s.price.tolist() == [4.0, 2.0]


def test_binary_copy_records_follow_the_postgresql_format() -> None:
    data = columns.tick_copy_data(batch([(1, 60, 2.5)], ["a", "b"]))
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and data.endswith(b"\xff\xff")
    body = data[len(columns.COPY_HEADER):-2]
    fields, l1, idx, l2, ts, l3, price, l4, avail = struct.unpack(">hiiiqidii", body)
    pg_epoch = datetime(2000, 1, 1, tzinfo=UTC)
    assert (fields, l1, l2, l3, l4) == (4, 4, 8, 8, 4)
    assert idx == 1 and price == 2.5 and avail == columns.NO_INSTANCES
    assert pg_epoch + timedelta(microseconds=ts) == T0 + timedelta(seconds=60)


def test_columns_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="outside offer_keys"):
        batch([(2, 0, 1.0)], ["a", "b"])
    with pytest.raises(ValueError, match="non-finite"):
        batch([(0, 0, float("nan"))], ["a"])
    with pytest.raises(ValueError, match="naive"):
        columns.from_rows([("a", datetime(2026, 1, 1), 1.0, None)])


def test_write_tick_columns_on_sqlite_is_idempotent_and_moves_offers_forward(ctx: Context) -> None:
    quotes = [PriceQuote(provider="lambda", region=f"r{i}", instance_type="gpu_1x_h100", gpu_model="H100 SXM",
                         gpu_count=2, vram_gb=80, price_per_hour=4.0, observed_at=T0) for i in range(2)]
    keys = [q.offer_key for q in quotes]
    with ctx.db.session() as session:
        bulk.write_quotes(session, quotes)
    rows = [(0, 600, 5.0), (0, 1200, 6.0), (1, 600, 3.0), (0, 3600, 7.0)]
    with ctx.db.session() as session:
        first = bulk.write_tick_columns(session, batch(rows, keys, cap=1))
    with ctx.db.session() as session:
        again = bulk.write_tick_columns(session, batch(rows, keys, cap=1))
        late = bulk.write_tick_columns(session, batch([(1, 300, 9.0)], keys))
        ids = offer_store.series_ids(session, keys)
        offers = {o.offer_key: o for o in session.scalars(select(Offer).where(Offer.offer_key.in_(keys)))}
        ticks = session.scalars(select(PriceTick).where(PriceTick.series_id.in_(ids.values()))).all()
        hourly = session.execute(
            select(PriceTickHourly.series_id, PriceTickHourly.open, PriceTickHourly.high, PriceTickHourly.low,
                   PriceTickHourly.close, PriceTickHourly.ticks)
            .where(PriceTickHourly.series_id == ids[keys[0]]).order_by(PriceTickHourly.bucket)
        ).all()
    assert (first.ticks_inserted, first.offers_updated) == (4, 2)
    assert (again.ticks_inserted, late.ticks_inserted, late.offers_updated) == (0, 1, 0)
    assert len(ticks) == 2 + 4 + 1
    a, b = offers[keys[0]], offers[keys[1]]
    assert (a.price_per_hour, a.price_per_gpu_hour, a.capacity) == (7.0, 3.5, "low")
    assert a.observed_at == T0 + timedelta(hours=1)
    assert b.price_per_hour == 3.0  # the late 9.0 tick is history, not the current price
    assert [tuple(r)[1:] for r in hourly] == [(4.0, 6.0, 4.0, 6.0, 3), (7.0, 7.0, 7.0, 7.0, 1)]
