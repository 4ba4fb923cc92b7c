"""Importing a catalog file into the current offers: the one path for `cloudarb catalog import` and
`cloudarb db seed` (the bundled snapshot).

Every row goes through ``ingestion.catalogs.load_catalog`` under its declared convention (or, for a
CloudArb snapshot, through the same data-sheet check), so what is stored is exactly what a dry run
shows, and every refused row comes back with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudarb.errors import InvalidInput
from ingestion.catalog_result import CatalogLoad, LoadCollector
from ingestion.catalogs import load_catalog, load_snapshot
from ingestion.conventions import CONVENTIONS
from ingestion.datasheet import DEFAULT_PRICE_POLICY
from ingestion.errors import IngestionError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "snapshot"
"""The CloudArb snapshot CSV (``ingestion.rows.QUOTE_COLUMNS``), e.g. cloudarb/data/price_snapshot.csv."""


def formats() -> list[str]:
    """Every value ``--format`` takes: the catalog conventions, then the CloudArb snapshot."""
    return [*CONVENTIONS, SNAPSHOT_FORMAT]


def _snapshot(path: Path, provider: str | None) -> CatalogLoad:
    quotes = load_snapshot(path)
    collector = LoadCollector(source=str(path), convention=SNAPSHOT_FORMAT, provider=provider or "",
                              policy=DEFAULT_PRICE_POLICY)
    for line, quote in enumerate(quotes, start=2):
        collector.rows_read += 1
        data = quote.model_dump()
        if provider:
            data["provider"] = provider
        record = {k: str(v) for k, v in data.items() if k in ("provider", "instance_type", "gpu_model", "region")}
        collector.offer_row(line, record, [data])
    return collector.result()


def load(
    path: Path, *, fmt: str, provider: str | None = None, observed_at: datetime | date | None = None
) -> CatalogLoad:
    """Read and check a catalog file; ``InvalidInput`` for an unknown format or an unreadable file."""
    if fmt not in formats():
        raise InvalidInput(f"--format: unknown catalog format {fmt!r}; known: {', '.join(formats())}",
                           field="format")
    if provider is not None and not provider.replace("_", "").isalnum():
        raise InvalidInput(f"--provider: {provider!r} is not a provider key (lowercase letters, digits, _)",
                           field="provider")
    key = provider.lower() if provider else None
    try:
        if fmt == SNAPSHOT_FORMAT:
            return _snapshot(path, key)
        return load_catalog(path, convention=fmt, provider=key, observed_at=observed_at)
    except IngestionError as exc:
        raise InvalidInput(str(exc), field="file") from exc


@dataclass(frozen=True)
class Imported:
    load: CatalogLoad
    stored: int

    def as_dict(self) -> dict[str, Any]:
        return {"summary": {**self.load.summary(), "stored": self.stored}}


def store(session: Session, result: CatalogLoad) -> int:
    """Store the checked offers of a load through the ingest write path (`bulk.write_quotes`: the ticks,
    idempotent, keyed by offer and time; their hourly rows; the current offers), and build the hourly rows
    of the load's series that an earlier import stored without them. Returns the quotes written."""
    from cloudarb.ingest import bulk, hourly

    if not result.offers:
        return 0
    written = bulk.write_quotes(session, result.offers)
    rebuilt = hourly.backfill(session, [q.offer_key for q in result.offers])
    log.info("catalog imported", extra={**result.summary(), "stored": written.quotes,
                                        "ticks_inserted": written.ticks_inserted, "hourly_rebuilt": rebuilt})
    return written.quotes
