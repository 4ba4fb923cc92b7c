"""Properties of the one loader path: whatever a catalog holds, what comes out passed the check."""

from __future__ import annotations

import csv
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.catalogs import load_catalog
from ingestion.datasheet import check_quote
from ingestion.gpu_specs import GPU_MODELS

HEADER = ["InstanceType", "AcceleratorName", "AcceleratorCount", "GpuInfo", "Price", "SpotPrice", "Region"]
NAMES = sorted({*GPU_MODELS, "A100", "H100", "V100", "A100-80GB", "H100-NVLINK", "Zorblax 9", "RTX 9999"})

rows = st.lists(
    st.fixed_dictionaries({
        "name": st.sampled_from(NAMES),
        "count": st.sampled_from(["1", "2", "8", "0.5", "0", ""]),
        "mib": st.one_of(st.none(), st.floats(min_value=0, max_value=3_000_000, allow_nan=False)),
        "price": st.sampled_from(["", "0", "0.00001", "0.4", "2.5", "31.4", "9999"]),
        "spot": st.sampled_from(["", "0.00", "0.2", "5000"]),
    }),
    min_size=1,
    max_size=12,
)


def _write(path: Path, records: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(records)


def _record(i: int, row: dict[str, object]) -> dict[str, str]:
    mib = row["mib"]
    info = "" if mib is None else f"{{'Gpus': [{{'MemoryInfo': {{'SizeInMiB': {mib}}}}}]}}"
    return {"InstanceType": f"i{i}", "AcceleratorName": str(row["name"]), "AcceleratorCount": str(row["count"]),
            "GpuInfo": info, "Price": str(row["price"]), "SpotPrice": str(row["spot"]), "Region": "r"}


@settings(max_examples=60, deadline=None)
@given(rows, st.sampled_from(["skypilot", "skypilot-per-instance", "runpod", "shadeform"]))
def test_every_offer_passes_the_datasheet_check(generated: list[dict[str, object]], convention: str) -> None:
    records = [_record(i, row) for i, row in enumerate(generated)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vms.csv"
        _write(path, records)
        load = load_catalog(path, convention=convention, provider="p", observed_at=date(2026, 7, 30))
    for quote in load.offers:
        assert check_quote(quote).ok, quote
        assert quote.gpu_model in GPU_MODELS and quote.gpu_model_known
    rows_with_offers = {q.instance_type for q in load.offers}
    refused = [q.record["InstanceType"] for q in load.quarantined]
    assert not rows_with_offers & set(refused)
    assert load.rows_read == len(records) == len(rows_with_offers) + len(refused) + sum(load.skipped.values())


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(GPU_MODELS)),
    st.sampled_from([0.25, 0.5, 2.0, 3.0, 4.0, 8.0]),
    st.sampled_from(["1", "2", "4", "8"]),
)
def test_a_mislabeled_memory_is_quarantined(model: str, factor: float, count: str) -> None:
    """Memory per GPU scaled off every data-sheet size (a unit or per-instance misread) is refused."""
    spec = GPU_MODELS[model]
    memory_gb = spec.vram_gb * factor
    if any(0.85 <= memory_gb / size <= 1.1 for size in spec.memory_options_gb):
        return  # the scaled size is another real size of this model (RTX 3060 8 and 12 GB...)
    record = {"InstanceType": "x", "AcceleratorName": model, "AcceleratorCount": count,
              "GpuInfo": f"{{'Gpus': [{{'MemoryInfo': {{'SizeInMiB': {memory_gb * 1024}}}}}]}}",
              "Price": "1.0", "SpotPrice": "", "Region": "r"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vms.csv"
        _write(path, [record])
        load = load_catalog(path, convention="skypilot", provider="p", observed_at=date(2026, 7, 30))
    assert not load.offers
    assert [q.reason for q in load.quarantined] == ["memory outside data sheet"]
    assert model in load.quarantined[0].detail


def test_a_name_that_states_memory_is_not_overruled_by_a_contradicting_figure() -> None:
    record = {"InstanceType": "x", "AcceleratorName": "A100-40GB", "AcceleratorCount": "1",
              "GpuInfo": "{'Gpus': [{'MemoryInfo': {'SizeInMiB': 81920}}]}", "Price": "1.0", "SpotPrice": "",
              "Region": "r"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vms.csv"
        _write(path, [record])
        load = load_catalog(path, convention="skypilot", provider="p", observed_at=date(2026, 7, 30))
    assert [q.reason for q in load.quarantined] == ["memory outside data sheet"]
    assert "A100 40GB SXM" in load.quarantined[0].detail
