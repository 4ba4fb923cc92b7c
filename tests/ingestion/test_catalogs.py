"""Catalog loaders against the real shared data files and small hand-made edge cases."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ingestion.catalogs import (
    load_catalog,
    load_gcp_pricing_table,
    load_skypilot_vms,
    load_snapshot,
    write_snapshot,
)
from ingestion.errors import IngestionError, MalformedCatalog
from ingestion.rows import QUOTE_COLUMNS, quote_row, quote_rows

SNAPSHOT = Path(__file__).resolve().parents[2] / "cloudarb" / "data" / "price_snapshot.csv"
DAY = date(2026, 7, 30)


def test_gcp_table_real_file(shared_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        quotes = load_gcp_pricing_table(shared_data / "prices" / "gcp_cyclenerd_gpu_instances_latest.csv")
    assert "fractional GPU" in caplog.text  # the 60 G4 vGPU slices are reported, not silently lost
    assert len(quotes) == 2 * (984 - 60)
    assert Counter(q.spot for q in quotes) == {False: 924, True: 924}
    a3 = next(q for q in quotes if q.instance_type == "a3-highgpu-8g" and q.region == "us-central1" and not q.spot)
    assert (a3.gpu_model, a3.gpu_count, a3.vram_gb, a3.vcpus, a3.ram_gb) == ("H100 SXM", 8, 80.0, 208.0, 1872.0)
    assert a3.observed_at == datetime(2026, 7, 30, tzinfo=UTC)
    spot = next(q for q in quotes if q.offer_key != a3.offer_key and q.instance_type == a3.instance_type
                and q.region == a3.region)
    assert spot.spot and spot.price_per_hour < a3.price_per_hour
    assert {q.gpu_model for q in quotes} == {"A100 40GB SXM", "A100 80GB SXM", "H100 SXM", "L4", "RTX PRO 6000"}


def test_lambda_catalog_real_file(shared_data: Path) -> None:
    quotes = load_skypilot_vms(
        shared_data / "prices" / "anycloud_lambda_gpu_vms.csv", provider="lambda", observed_at=DAY
    )
    assert len(quotes) == 391 and not any(q.spot for q in quotes)
    h100 = next(q for q in quotes if q.instance_type == "gpu_8x_h100_sxm5")
    assert (h100.gpu_model, h100.gpu_count, h100.vram_gb) == ("H100 SXM", 8, 80.0)
    assert h100.price_per_gpu_hour == pytest.approx(h100.price_per_hour / 8)
    pcie = next(q for q in quotes if q.instance_type == "gpu_1x_h100_pcie")
    assert pcie.gpu_model == "H100 PCIe"
    assert all(q.gpu_model_known for q in quotes)


def test_vast_catalog_real_file(shared_data: Path) -> None:
    quotes = load_skypilot_vms(
        shared_data / "prices" / "anycloud_vast_gpu_vms.csv",
        provider="vast",
        observed_at=DAY,
        gpu_memory_field="total",
    )
    assert len(quotes) == 64
    a100 = {(q.region, q.gpu_model) for q in quotes if q.instance_type.startswith("2x-A100_SXM4")}
    assert a100 == {("Montana, US, NA", "A100 80GB SXM"), ("Germany, DE, EU", "A100 40GB SXM")}
    assert {q.gpu_model for q in quotes if "4070S_Ti" in q.instance_type} == {"RTX 4070 Ti Super"}
    assert not any(q.spot for q in quotes)  # SpotPrice 0.00 means no spot price, not a free GPU


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vms.csv"
    path.write_text(text)
    return path


def test_skypilot_unknown_gpu_quarantined_cpu_rows_skipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,AvailabilityZone,GpuInfo\n"
        "x1,Zorblax 9,2,16,64,3.0,1.2,eu-1,eu-1a,\"{'Gpus': [{'Name': 'Zorblax 9', 'Count': 2, 'MemoryInfo': {'SizeInMiB': 65536}}]}\"\n"
        "c1,,,4,16,0.2,,eu-1,eu-1a,\n"
        "x2,T4,1,4,16,,0.1,eu-1,eu-1b,\n",
    )
    load = load_catalog(path, convention="skypilot", provider="someone", observed_at=datetime(2026, 1, 1, 12))
    assert [(q.line, q.reason) for q in load.quarantined] == [(2, "unknown GPU model")]
    assert "Zorblax 9" in load.quarantined[0].detail and load.quarantined[0].record["InstanceType"] == "x1"
    assert load.skipped == {"no GPU (CPU-only or host-only row)": 1}
    assert [(q.instance_type, q.spot, q.gpu_model, q.provider) for q in load.offers] == [("x2", True, "T4", "someone")]
    assert load.offers[0].observed_at.tzinfo is not None


def test_missing_columns_raise(tmp_path: Path) -> None:
    path = _write(tmp_path, "InstanceType,Price\nx,1\n")
    with pytest.raises(MalformedCatalog, match="missing columns"):
        load_skypilot_vms(path, provider="p", observed_at=DAY)


def test_bad_number_is_quarantined_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "InstanceType,AcceleratorName,AcceleratorCount,Price,Region\nx,T4,1,cheap,eu\ny,T4,1,0.35,eu\n",
    )
    load = load_catalog(path, convention="skypilot", provider="p", observed_at=DAY)
    assert [(q.line, q.reason) for q in load.quarantined] == [(2, "unparseable row")]
    assert [q.instance_type for q in load.offers] == ["y"]


def test_missing_file_is_a_malformed_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(MalformedCatalog) as info:
        load_catalog(tmp_path / "nope.csv", convention="lambda")
    assert isinstance(info.value, IngestionError) and info.value.__cause__ is not None


def test_missing_file_is_an_ingestion_error(tmp_path: Path) -> None:
    with pytest.raises(MalformedCatalog):
        load_gcp_pricing_table(tmp_path / "nope.csv")


def test_snapshot_round_trip(tmp_path: Path, shared_data: Path) -> None:
    quotes = load_skypilot_vms(
        shared_data / "prices" / "anycloud_vast_gpu_vms.csv", provider="vast", observed_at=DAY,
        gpu_memory_field="total",
    )
    out = tmp_path / "snap.csv"
    assert write_snapshot(quotes, out) == len(quotes)
    assert load_snapshot(out) == quotes


def test_bundled_snapshot_is_current_and_small(shared_data: Path) -> None:
    quotes = load_snapshot(SNAPSHOT)
    assert SNAPSHOT.stat().st_size < 1_000_000
    # every provider with real prices in ../shared/data (cloudarb/data/SNAPSHOT.md has the origins)
    assert Counter(q.provider for q in quotes) == {"gcp": 1848, "azure": 1284, "lambda": 391, "aws": 369, "vast": 64}
    assert all(q.gpu_model_known for q in quotes)
    header = SNAPSHOT.read_text().splitlines()[0].split(",")
    assert header == list(QUOTE_COLUMNS)[: len(header)]


def test_rows_are_in_documented_order() -> None:
    quote = load_snapshot(SNAPSHOT)[0]
    row = quote_row(quote, derived=True)
    assert row[: len(QUOTE_COLUMNS)] == tuple(getattr(quote, c) for c in QUOTE_COLUMNS)
    assert row[-2:] == (quote.offer_key, quote.price_per_gpu_hour)
    assert next(quote_rows([quote])) == row[: len(QUOTE_COLUMNS)]
