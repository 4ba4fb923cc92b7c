"""Offline price catalogs -> quotes: SkyPilot vms.csv, the GCP pricing table, our own snapshot.

Catalog files serve offline use, backfill and the bundled demo snapshot; they are read here and
nowhere else. Rows that cannot be expressed as a quote (CPU-only machine types, fractional GPUs) are
counted and logged, never dropped silently; GPU names nobody maps are kept and flagged.

Formats:
- SkyPilot catalog (``vms.csv``): InstanceType, AcceleratorName, AcceleratorCount, vCPUs, MemoryGiB,
  GpuInfo (a Python-literal dict), Price, SpotPrice, Region, optional AvailabilityZone. Price and
  SpotPrice are USD per instance-hour; an empty (or zero) SpotPrice means "no spot offer".
- GCP pricing table (derived from Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml):
  snapshot_date, commit, machine_type, gpu_type, gpu_count, vcpus, ram_gb, region, hour_usd,
  hour_spot_usd, ... . GCP GPU machine types bundle their GPUs: hour_usd is the whole VM.
- CloudArb snapshot: one row per quote, `ingestion.rows.QUOTE_COLUMNS` as the header.
"""

from __future__ import annotations

import ast
import csv
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from ingestion.errors import MalformedCatalog
from ingestion.gpus import GpuMatch, resolve_gpu, resolve_lambda_instance
from ingestion.rows import QUOTE_COLUMNS, quote_from_csv_record, quote_rows, to_csv_cell
from ingestion.schemas import PriceQuote

logger = logging.getLogger(__name__)

GpuMemoryField = Literal["per_gpu", "total"]

_SKYPILOT_REQUIRED = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")
_GCP_REQUIRED = ("machine_type", "gpu_type", "gpu_count", "region", "hour_usd", "snapshot_date")


def _open_records(path: Path, required: Iterable[str]) -> Iterator[dict[str, str]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise MalformedCatalog(f"cannot open catalog {path}: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise MalformedCatalog(f"{path}: missing columns {missing}; found {reader.fieldnames}")
        yield from reader


def _float_or_none(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    return float(text)


def _gpu_memory_gb(gpu_info: str, count: int, field: GpuMemoryField) -> float | None:
    """Per-GPU memory from SkyPilot's GpuInfo literal (MemoryInfo.SizeInMiB of the first GPU)."""
    if not gpu_info.strip():
        return None
    try:
        info = ast.literal_eval(gpu_info)
        size_mib = float(info["Gpus"][0]["MemoryInfo"]["SizeInMiB"])
    except (ValueError, SyntaxError, KeyError, IndexError, TypeError):
        return None
    per_gpu = size_mib / count if field == "total" else size_mib
    return round(per_gpu / 1024, 1)


_COUNTED_TYPE = re.compile(r"^\d+x-(?P<gpu>.+)-\d+-\d+$")


def _resolve_row_gpu(accelerator: str, instance: str, *, provider: str, vram_gb: float | None) -> GpuMatch:
    """Prefer the GPU spelled in the instance type when it is more precise than AcceleratorName.

    Lambda types ('gpu_1x_h100_pcie') and marketplace types ('4x-RTX_4070S_Ti-32-65536') keep the
    form factor and variant ('Ti', 'SXM', 'NVL') that SkyPilot's AcceleratorName column drops.
    """
    if provider == "lambda":
        lam = resolve_lambda_instance(instance)
        if lam is not None and lam[0].known:
            return lam[0]
    counted = _COUNTED_TYPE.match(instance)
    if counted is not None:
        precise = resolve_gpu(counted.group("gpu"), provider=provider, instance_type=instance, vram_gb=vram_gb)
        if precise.known:
            return precise
    return resolve_gpu(accelerator, provider=provider, instance_type=instance, vram_gb=vram_gb)


def _whole_count(text: str) -> int | None:
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else None


def _utc(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.combine(moment, time(0, 0), tzinfo=UTC)


def load_skypilot_vms(
    path: Path,
    *,
    provider: str,
    observed_at: datetime | date,
    gpu_memory_field: GpuMemoryField = "per_gpu",
) -> list[PriceQuote]:
    """Quotes from a SkyPilot-format vms.csv: one on-demand quote per row, one spot quote if priced.

    ``provider`` is the CloudArb key the catalog belongs to ('lambda', 'vast', ...). SkyPilot's
    GpuInfo records memory per GPU; some third-party catalogs record the total across the row's GPUs
    instead, which ``gpu_memory_field="total"`` corrects.
    """
    at = _utc(observed_at)
    quotes: list[PriceQuote] = []
    skipped: Counter[str] = Counter()
    for line, rec in enumerate(_open_records(path, _SKYPILOT_REQUIRED), start=2):
        try:
            count = _whole_count(rec["AcceleratorCount"] or "0")
            if not rec["AcceleratorName"] or count is None:
                skipped["no whole GPU"] += 1
                continue
            vram = _gpu_memory_gb(rec.get("GpuInfo", ""), count, gpu_memory_field)
            instance = rec["InstanceType"]
            match = _resolve_row_gpu(rec["AcceleratorName"], instance, provider=provider, vram_gb=vram)
            region = rec["Region"].strip().lstrip(", ").strip()
            base = dict(
                provider=provider,
                region=region,
                zone=(rec.get("AvailabilityZone") or "").strip(),
                instance_type=instance,
                gpu_model=match.model,
                gpu_model_raw=rec["AcceleratorName"],
                gpu_model_known=match.known,
                gpu_count=count,
                vram_gb=match.vram_gb if match.known else (vram or 0.0),
                vcpus=_float_or_none(rec.get("vCPUs")),
                ram_gb=_float_or_none(rec.get("MemoryGiB")),
                observed_at=at,
            )
            for spot, text in ((False, rec["Price"]), (True, rec.get("SpotPrice"))):
                price = _float_or_none(text)
                if price is None or price <= 0:
                    if not spot:
                        skipped["no on-demand price"] += 1
                    continue
                quotes.append(PriceQuote.model_validate({**base, "spot": spot, "price_per_hour": price}))
        except (ValueError, ValidationError) as exc:
            raise MalformedCatalog(f"{path}:{line}: {exc}", provider=provider) from exc
    _log_load(path, provider, quotes, skipped)
    return quotes


def load_gcp_pricing_table(path: Path) -> list[PriceQuote]:
    """Quotes from the GCP pricing table: an on-demand and (when priced) a spot quote per row.

    observed_at is each row's snapshot_date. Machine types with a fraction of a GPU (G4 vGPU slices)
    cannot be a quote with whole GPUs; they are skipped and counted in the log.
    """
    quotes: list[PriceQuote] = []
    skipped: Counter[str] = Counter()
    for line, rec in enumerate(_open_records(path, _GCP_REQUIRED), start=2):
        try:
            count = _whole_count(rec["gpu_count"])
            if count is None:
                skipped["fractional GPU"] += 1
                continue
            match = resolve_gpu(rec["gpu_type"], provider="gcp", instance_type=rec["machine_type"])
            base = dict(
                provider="gcp",
                region=rec["region"],
                instance_type=rec["machine_type"],
                gpu_model=match.model,
                gpu_model_raw=rec["gpu_type"],
                gpu_model_known=match.known,
                gpu_count=count,
                vram_gb=match.vram_gb,
                vcpus=_float_or_none(rec.get("vcpus")),
                ram_gb=_float_or_none(rec.get("ram_gb")),
                observed_at=_utc(date.fromisoformat(rec["snapshot_date"])),
            )
            for spot, text in ((False, rec["hour_usd"]), (True, rec.get("hour_spot_usd"))):
                price = _float_or_none(text)
                if price is None or price <= 0:
                    continue
                quotes.append(PriceQuote.model_validate({**base, "spot": spot, "price_per_hour": price}))
        except (ValueError, ValidationError) as exc:
            raise MalformedCatalog(f"{path}:{line}: {exc}", provider="gcp") from exc
    _log_load(path, "gcp", quotes, skipped)
    return quotes


def _log_load(path: Path, provider: str, quotes: list[PriceQuote], skipped: Counter[str]) -> None:
    unknown = sorted({q.gpu_model for q in quotes if not q.gpu_model_known})
    logger.info(
        "catalog loaded",
        extra={"path": str(path), "provider": provider, "quotes": len(quotes), "skipped": dict(skipped)},
    )
    if skipped:
        logger.warning("catalog rows skipped: %s (%s)", dict(skipped), path)
    if unknown:
        logger.warning("unmapped GPU names kept as-is for %s: %s", provider, unknown)


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
    for line, rec in enumerate(_open_records(path, required), start=2):
        try:
            quotes.append(quote_from_csv_record(rec))
        except (ValueError, ValidationError) as exc:
            raise MalformedCatalog(f"{path}:{line}: {exc}") from exc
    return quotes
