"""Price ticks as columns (numpy arrays), and what the PostgreSQL write path derives from them.

Per-row Python work is what limits a bulk loader at 100k ticks/s on two cores, so everything the
write path needs besides the database's own work is computed here column-wise:
- the ticks as PostgreSQL binary COPY records (fixed width: the offer is a small integer index into
  ``offer_keys``, joined back to its key on the server), so neither side formats or parses text;
- the hourly open/high/low/close per offer of the batch (`hourly`), merged into the hourly table;
- per offer: its earliest tick (the append-only check) and its latest tick (the current-offers row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

CAPACITY_WORDS: tuple[str, ...] = ("available", "low", "unavailable", "unknown")
"""Index = the int8 ``capacity`` code of `TickColumns` (the first three match the simulator's codes)."""
NO_INSTANCES = -1
"""``available_instances`` value meaning "not reported" (NULL in the database)."""

_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 00:00 UTC, PostgreSQL's timestamp origin, in Unix µs
_HOUR_US = 3_600 * 1_000_000
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
_TICK_RECORD = np.dtype([
    ("n", ">i2"), ("l_idx", ">i4"), ("idx", ">i4"), ("l_ts", ">i4"), ("ts", ">i8"), ("l_price", ">i4"),
    ("price", ">f8"), ("l_avail", ">i4"), ("avail", ">i4"),
])
_HOURLY_RECORD = np.dtype([
    ("n", ">i2"), ("l_idx", ">i4"), ("idx", ">i4"), ("l_bucket", ">i4"), ("bucket", ">i8"),
    ("l_open", ">i4"), ("open", ">f8"), ("l_high", ">i4"), ("high", ">f8"), ("l_low", ">i4"), ("low", ">f8"),
    ("l_close", ">i4"), ("close", ">f8"), ("l_open_at", ">i4"), ("open_at", ">i8"),
    ("l_close_at", ">i4"), ("close_at", ">i8"), ("l_ticks", ">i4"), ("ticks", ">i4"),
])


@dataclass(frozen=True, kw_only=True)
class TickColumns:
    """A batch of ticks: row i is offer ``offer_keys[offer_index[i]]`` at ``observed_at[i]``.

    ``observed_at`` is UTC datetime64 (any unit); ``available_instances`` uses `NO_INSTANCES` for
    "not reported"; ``capacity`` holds indexes into `CAPACITY_WORDS`. Rows may come in any order.
    """

    offer_keys: Sequence[str]
    offer_index: NDArray[np.int32]
    observed_at: NDArray[np.datetime64]
    price_per_hour: NDArray[np.float64]
    available_instances: NDArray[np.int32]
    capacity: NDArray[np.int8]

    def __post_init__(self) -> None:
        n = len(self.offer_index)
        for name in ("observed_at", "price_per_hour", "available_instances", "capacity"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, offer_index has {n}")
        if n and (int(self.offer_index.min()) < 0 or int(self.offer_index.max()) >= len(self.offer_keys)):
            raise ValueError("offer_index points outside offer_keys")
        if n and not bool(np.isfinite(self.price_per_hour).all()):
            raise ValueError("non-finite price in a tick batch")
        if n and (int(self.capacity.min()) < 0 or int(self.capacity.max()) >= len(CAPACITY_WORDS)):
            raise ValueError("capacity code outside CAPACITY_WORDS")

    def __len__(self) -> int:
        return int(self.offer_index.shape[0])

    def micros(self) -> NDArray[np.int64]:
        """observed_at as Unix microseconds."""
        return self.observed_at.astype("datetime64[us]").astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class OfferSpan:
    """Per offer present in a batch: its first and last tick, and the last tick's values."""

    index: NDArray[np.int64]
    first_us: NDArray[np.int64]
    last_us: NDArray[np.int64]
    price: NDArray[np.float64]
    available_instances: NDArray[np.int32]
    capacity: NDArray[np.int8]


@dataclass(frozen=True, kw_only=True)
class HourlyColumns:
    """Hourly OHLC per (offer index, hour), like the rows of ``price_ticks_hourly``."""

    index: NDArray[np.int64]
    bucket_us: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    open_us: NDArray[np.int64]
    close_us: NDArray[np.int64]
    ticks: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.index.shape[0])


def _sorted(cols: TickColumns) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Row order by (offer, time), with the sorted offer indexes and times."""
    us = cols.micros()
    order = np.lexsort((us, cols.offer_index)).astype(np.int64)
    return order, cols.offer_index[order].astype(np.int64), us[order]


def spans(cols: TickColumns) -> OfferSpan:
    order, idx, us = _sorted(cols)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if len(idx) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(idx)] - 1 if len(idx) else np.zeros(0, np.int64)
    last = order[ends]
    return OfferSpan(
        index=idx[starts], first_us=us[starts], last_us=us[ends], price=cols.price_per_hour[last],
        available_instances=cols.available_instances[last], capacity=cols.capacity[last],
    )


def hourly(cols: TickColumns) -> HourlyColumns:
    """Hourly OHLC of the batch; open/close are the prices at the earliest/latest tick of the hour."""
    order, idx, us = _sorted(cols)
    price = cols.price_per_hour[order]
    bucket = us // _HOUR_US
    if len(idx):
        starts = np.flatnonzero(np.r_[True, (idx[1:] != idx[:-1]) | (bucket[1:] != bucket[:-1])])
    else:
        starts = np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(idx)] - 1 if len(idx) else np.zeros(0, np.int64)
    empty = not len(idx)
    return HourlyColumns(
        index=idx[starts], bucket_us=bucket[starts] * _HOUR_US, open=price[starts], close=price[ends],
        high=np.zeros(0) if empty else np.maximum.reduceat(price, starts),
        low=np.zeros(0) if empty else np.minimum.reduceat(price, starts),
        open_us=us[starts], close_us=us[ends], ticks=(ends - starts + 1).astype(np.int64),
    )


def _records(dtype: np.dtype[np.void], n: int) -> NDArray[np.void]:
    rec = np.empty(n, dtype=dtype)
    names = dtype.names or ()
    rec["n"] = sum(1 for f in names if not f.startswith("l_") and f != "n")
    for f in names:
        if f.startswith("l_"):
            rec[f] = dtype.fields[f[2:]][0].itemsize  # type: ignore[index]
    return rec


def tick_copy_data(cols: TickColumns) -> bytes:
    """Binary COPY data for (offer index int4, observed_at timestamptz, price float8, instances int4)."""
    rec = _records(_TICK_RECORD, len(cols))
    rec["idx"] = cols.offer_index
    rec["ts"] = cols.micros() - _PG_EPOCH_US
    rec["price"] = cols.price_per_hour
    rec["avail"] = cols.available_instances
    return COPY_HEADER + rec.tobytes() + COPY_TRAILER


def hourly_copy_data(h: HourlyColumns) -> bytes:
    """Binary COPY data for the staging rows of the hourly merge (columns as `HourlyColumns`)."""
    rec = _records(_HOURLY_RECORD, len(h))
    rec["idx"] = h.index
    rec["bucket"] = h.bucket_us - _PG_EPOCH_US
    for f in ("open", "high", "low", "close"):
        rec[f] = getattr(h, f)
    rec["open_at"] = h.open_us - _PG_EPOCH_US
    rec["close_at"] = h.close_us - _PG_EPOCH_US
    rec["ticks"] = h.ticks
    return COPY_HEADER + rec.tobytes() + COPY_TRAILER


def from_micros(us: int) -> datetime:
    return _UNIX + timedelta(microseconds=us)


def from_rows(
    rows: Sequence[tuple[str, datetime, float, int | None]], capacity: Sequence[str] | None = None
) -> TickColumns:
    """Columns from (offer_key, observed_at aware, price, available_instances) tuples (small batches)."""
    keys: dict[str, int] = {}
    index = np.fromiter((keys.setdefault(r[0], len(keys)) for r in rows), dtype=np.int32, count=len(rows))
    us = np.fromiter(
        ((_aware(r[1]) - _UNIX) // _MICROSECOND for r in rows),
        dtype=np.int64, count=len(rows),
    )
    words = {w: i for i, w in enumerate(CAPACITY_WORDS)}
    caps = [words.get(c, 3) for c in capacity] if capacity is not None else [3] * len(rows)
    return TickColumns(
        offer_keys=list(keys), offer_index=index, observed_at=us.astype("datetime64[us]"),
        price_per_hour=np.fromiter((float(r[2]) for r in rows), dtype=np.float64, count=len(rows)),
        available_instances=np.fromiter(
            (NO_INSTANCES if r[3] is None else r[3] for r in rows), dtype=np.int32, count=len(rows)
        ),
        capacity=np.asarray(caps, dtype=np.int8),
    )


def _aware(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r} in a price tick (ticks are timezone-aware)")
    return ts
