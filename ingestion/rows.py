"""Quotes as flat rows, in one documented column order, for bulk writes and CSV snapshots.

Storage writes millions of quotes with COPY; building a dict per quote would dominate the cost, so
quotes turn into plain tuples here, in `QUOTE_COLUMNS` order (the PriceQuote fields in declaration
order), optionally followed by the two derived columns in `DERIVED_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from ingestion.schemas import PriceQuote

QUOTE_COLUMNS: tuple[str, ...] = tuple(PriceQuote.model_fields)
"""provider, region, zone, instance_type, gpu_model, gpu_model_raw, gpu_model_known, gpu_count,
vram_gb, vcpus, ram_gb, spot, price_per_hour, capacity, available_instances, reliability, observed_at
(plus any field added later, appended at the end)."""

DERIVED_COLUMNS: tuple[str, ...] = ("offer_key", "price_per_gpu_hour")

RowValue = str | int | float | bool | datetime | None


def quote_row(quote: PriceQuote, *, derived: bool = False) -> tuple[RowValue, ...]:
    """One quote as a tuple in `QUOTE_COLUMNS` order (then `DERIVED_COLUMNS` if asked)."""
    values: tuple[RowValue, ...] = tuple(getattr(quote, name) for name in QUOTE_COLUMNS)
    if derived:
        return values + (quote.offer_key, quote.price_per_gpu_hour)
    return values


def quote_rows(quotes: Iterable[PriceQuote], *, derived: bool = False) -> Iterator[tuple[RowValue, ...]]:
    """Lazily turn quotes into rows; feed straight to a COPY writer or csv.writer."""
    for quote in quotes:
        yield quote_row(quote, derived=derived)


def to_csv_cell(value: RowValue) -> str:
    """CSV text for one cell: empty for None, ISO-8601 for datetimes, 'true'/'false' for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


_NULLABLE = frozenset(name for name, f in PriceQuote.model_fields.items() if f.default is None)


def quote_from_csv_record(record: Mapping[str, str]) -> PriceQuote:
    """Parse one record written with `to_csv_cell` back into a quote (validated by pydantic).

    An empty cell is None for optional columns; pydantic's lax mode turns the remaining text into
    numbers, booleans ('true'/'false') and datetimes.
    """
    data: dict[str, Any] = {}
    for name in QUOTE_COLUMNS:
        text = record.get(name)
        if text is None:
            continue
        data[name] = None if (text == "" and name in _NULLABLE) else text
    return PriceQuote.model_validate(data)
