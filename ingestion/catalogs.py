"""Offline price catalogs -> checked quotes: the one loader path for the app, benchmarks and tests.

`load_catalog` reads a catalog file under a declared `CatalogConvention` (`ingestion.conventions`)
and returns a `CatalogLoad`: the offers that passed the data-sheet check, every quarantined row with
its reason, and the rows skipped because they are not offers by nature. Nothing is dropped silently
and nothing unchecked is returned.

Formats:
- SkyPilot catalog (``vms.csv``), every layout in `ingestion.skypilot_catalog`.
- GCP pricing table (derived from Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml):
  snapshot_date, commit, machine_type, gpu_type, gpu_count, vcpus, ram_gb, region, hour_usd,
  hour_spot_usd, ... . GCP GPU machine types bundle their GPUs: hour_usd is the whole VM.
- CloudArb snapshot: one row per quote, `ingestion.rows.QUOTE_COLUMNS` as the header.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ingestion.catalog_result import CatalogLoad, LoadCollector
from ingestion.conventions import CatalogConvention, catalog_convention
from ingestion.datasheet import DEFAULT_PRICE_POLICY, PricePolicy
from ingestion.errors import MalformedCatalog
from ingestion.gpus import resolve_gpu
from ingestion.rows import QUOTE_COLUMNS, quote_from_csv_record, quote_rows, to_csv_cell
from ingestion.schemas import PriceQuote
from ingestion.skypilot_catalog import compose_gcp_vms, offer_from_row

logger = logging.getLogger(__name__)

GpuMemoryField = Literal["per_gpu", "total"]

_SKYPILOT_REQUIRED = ("AcceleratorName", "AcceleratorCount", "Price", "Region")
_GCP_REQUIRED = ("machine_type", "gpu_type", "gpu_count", "region", "hour_usd", "snapshot_date")


def _read_records(path: Path, required: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, record) pairs; MalformedCatalog when the file cannot be read or lacks columns."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise MalformedCatalog(f"cannot open catalog {path}: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise MalformedCatalog(f"{path}: missing columns {missing}; found {reader.fieldnames}")
        yield from enumerate(reader, start=2)


def _utc(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.combine(moment, time(0, 0), tzinfo=UTC)


def _counted(records: Iterable[tuple[int, dict[str, str]]], collector: LoadCollector) -> Iterator[tuple[int, dict[str, str]]]:
    for item in records:
        collector.rows_read += 1
        yield item


def load_catalog(
    path: Path,
    *,
    convention: str | CatalogConvention,
    provider: str | None = None,
    observed_at: datetime | date | None = None,
    policy: PricePolicy = DEFAULT_PRICE_POLICY,
) -> CatalogLoad:
    """Load one catalog file under a convention (a key of `CONVENTIONS` or a convention object).

    ``provider`` overrides the convention's provider key (a user's own catalog of a provider the
    project has no client for). ``observed_at`` stamps SkyPilot rows, which carry no date (default:
    now); the GCP pricing table carries its own snapshot_date. Raises `MalformedCatalog` only for
    a file that cannot be read as the format at all (missing columns); bad rows are quarantined.
    """
    conv = catalog_convention(convention) if isinstance(convention, str) else convention
    key = provider or conv.provider
    collector = LoadCollector(source=str(path), convention=conv.key, provider=key, policy=policy)
    if conv.format == "gcp-pricing":
        _load_gcp_table(path, conv=conv, provider=key, collector=collector)
    else:
        at = _utc(observed_at or datetime.now(UTC))
        records = _counted(_read_records(path, _SKYPILOT_REQUIRED), collector)
        if conv.price == "gcp_host_plus_accelerator":
            records = compose_gcp_vms(records, convention=conv, collector=collector)
        for line, rec in records:
            offer_from_row(line, rec, convention=conv, provider=key, observed_at=at, collector=collector)
    result = collector.result()
    logger.info("catalog loaded", extra=result.summary())
    if result.quarantined:
        logger.warning("catalog rows quarantined: %s (%s)", result.quarantined_by_reason, path)
    return result


def _load_gcp_table(path: Path, *, conv: CatalogConvention, provider: str, collector: LoadCollector) -> None:
    """The GCP pricing table: an on-demand and (when priced) a spot quote per machine type x region."""
    for line, rec in _counted(_read_records(path, _GCP_REQUIRED), collector):
        try:
            count_value = float(rec["gpu_count"])
            observed = _utc(date.fromisoformat(rec["snapshot_date"]))
            vcpus = float(rec["vcpus"]) if rec.get("vcpus") else None
            ram = float(rec["ram_gb"]) if rec.get("ram_gb") else None
            prices = [(False, rec.get("hour_usd")), (True, rec.get(conv.spot_column or ""))]
            priced = [(s, float(p)) for s, p in prices if p not in (None, "") and float(p) > 0]
        except ValueError as exc:
            collector.quarantine(line, "unparseable row", str(exc), rec)
            continue
        if count_value < 1 or not count_value.is_integer():
            detail = f"{rec['machine_type']} holds {count_value:g} of a GPU"
            collector.quarantine(line, "fractional GPU", detail, rec)
            continue
        match = resolve_gpu(rec["gpu_type"], provider="gcp", instance_type=rec["machine_type"])
        if not match.known:
            collector.quarantine(line, "unknown GPU model", f"{rec['gpu_type']!r} is not in the GPU table", rec)
            continue
        if not priced:
            collector.quarantine(line, "no price", "neither hour_usd nor hour_spot_usd", rec)
            continue
        base: dict[str, Any] = dict(
            provider=provider,
            region=rec["region"],
            instance_type=rec["machine_type"],
            gpu_model=match.model,
            gpu_model_raw=rec["gpu_type"],
            gpu_model_known=True,
            gpu_count=int(count_value),
            vram_gb=match.vram_gb,
            vcpus=vcpus,
            ram_gb=ram,
            observed_at=observed,
        )
        collector.offer_row(line, rec, [{**base, "spot": s, "price_per_hour": p} for s, p in priced])


def load_skypilot_vms(
    path: Path,
    *,
    provider: str,
    observed_at: datetime | date,
    gpu_memory_field: GpuMemoryField = "per_gpu",
) -> list[PriceQuote]:
    """Checked quotes from a SkyPilot-format vms.csv (kept for existing callers; prefer `load_catalog`).

    Uses the convention registered under ``provider`` when there is one; otherwise the generic one
    whose memory scope ``gpu_memory_field`` names. Quarantined rows are logged, not returned.
    """
    try:
        conv = catalog_convention(provider)
    except KeyError:
        conv = catalog_convention("skypilot-per-instance" if gpu_memory_field == "total" else "skypilot")
    if conv.format != "skypilot":
        conv = catalog_convention("skypilot")
    return list(load_catalog(path, convention=conv, provider=provider, observed_at=observed_at).offers)


def load_gcp_pricing_table(path: Path) -> list[PriceQuote]:
    """Checked quotes from the GCP pricing table (kept for existing callers; prefer `load_catalog`)."""
    return list(load_catalog(path, convention="gcp").offers)


def write_snapshot(quotes: Iterable[PriceQuote], path: Path) -> int:
    """Write quotes as the CloudArb snapshot CSV (header = QUOTE_COLUMNS); returns the row count."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(QUOTE_COLUMNS)
        for row in quote_rows(quotes):
            writer.writerow([to_csv_cell(v) for v in row])
            count += 1
    return count


def load_snapshot(path: Path) -> list[PriceQuote]:
    """Read a snapshot written by `write_snapshot` (e.g. cloudarb/data/price_snapshot.csv)."""
    quotes: list[PriceQuote] = []
    required = ("provider", "instance_type", "gpu_model", "gpu_count", "price_per_hour", "observed_at")
    for line, rec in _read_records(path, required):
        try:
            quotes.append(quote_from_csv_record(rec))
        except (ValueError, ValidationError) as exc:
            raise MalformedCatalog(f"{path}:{line}: {exc}") from exc
    return quotes
