"""GPU names as people type them, the identity table's invariants, and the data-sheet check."""

from __future__ import annotations

import pytest

from ingestion.datasheet import PricePolicy, check_offer
from ingestion.errors import IngestionError, UnknownGpuName
from ingestion.gpu_query import resolve_gpu_names, resolve_gpu_request
from ingestion.gpu_specs import GPU_MODELS, canonical_model, gpu_families
from ingestion.gpus import memory_fits

A100S = ("A100 80GB SXM", "A100 80GB PCIe", "A100 40GB SXM", "A100 40GB PCIe")


@pytest.mark.parametrize(
    ("text", "models", "count", "memory"),
    [
        ("a100", A100S, None, None),
        ("A100", A100S, None, None),
        ("A100-80GB", ("A100 80GB SXM", "A100 80GB PCIe"), None, 80.0),
        ("A100 80GB", ("A100 80GB SXM", "A100 80GB PCIe"), None, 80.0),
        ("a100_80gb_pcie", ("A100 80GB PCIe",), None, None),  # a canonical name: exactly it
        ("A100 SXM", ("A100 80GB SXM", "A100 40GB SXM"), None, None),
        ("A100 40GB", A100S, None, 40.0),
        ("h100", ("H100 SXM", "H100 PCIe", "H100 NVL"), None, None),
        ("H100:8", ("H100 SXM", "H100 PCIe", "H100 NVL"), 8, None),
        ("8x H100", ("H100 SXM", "H100 PCIe", "H100 NVL"), 8, None),
        ("h100_sxm", ("H100 SXM",), None, None),
        ("H100-NVLINK", ("H100 SXM",), None, None),
        ("H100 NVL", ("H100 NVL",), None, None),
        ("H100 SXM5:4", ("H100 SXM",), 4, None),
        ("v100", ("V100 16GB", "V100 32GB"), None, None),
        ("V100-32GB", ("V100 32GB",), None, None),
        ("V100 32G", ("V100 32GB",), None, 32.0),
        ("A6000", ("RTX A6000",), None, None),
        ("rtx 4090", ("RTX 4090",), None, None),
        ("RTX PRO 6000 96GB", ("RTX PRO 6000",), None, 96.0),
        ("MI25", ("MI25",), None, None),
        ("l40s", ("L40S",), None, None),
        ("NVIDIA GeForce RTX 3090", ("RTX 3090",), None, None),
    ],
)
def test_names_people_type(text: str, models: tuple[str, ...], count: int | None, memory: float | None) -> None:
    got = resolve_gpu_request(text)
    assert (got.models, got.count, got.min_memory_gb) == (models, count, memory)


def test_memory_is_a_minimum() -> None:
    assert all(GPU_MODELS[m].vram_gb >= 80 for m in resolve_gpu_request("H100 80GB").models)
    assert "H100 NVL" in resolve_gpu_request("H100 80GB").models  # 94 GB satisfies 'at least 80'


@pytest.mark.parametrize(("text", "expected"), [("H1000", "H100"), ("A1000", "A100"), ("rtx 4099", "RTX 4090")])
def test_unknown_names_suggest_the_closest(text: str, expected: str) -> None:
    with pytest.raises(UnknownGpuName) as info:
        resolve_gpu_request(text, field="gpu_type")
    error = info.value
    assert isinstance(error, IngestionError) and isinstance(error, ValueError)
    assert error.name == text and error.field == "gpu_type" and expected in error.suggestions
    assert f"gpu_type: unknown GPU {text!r}" in str(error) and expected in str(error)


@pytest.mark.parametrize("text", ["", "   ", ":8", "A100 999GB", "Zorblax 9"])
def test_never_an_empty_match(text: str) -> None:
    with pytest.raises(UnknownGpuName):
        resolve_gpu_request(text)


def test_filter_union_in_table_order() -> None:
    assert resolve_gpu_names(["H100 NVL", "a100 80gb"]) == ("H100 NVL", "A100 80GB SXM", "A100 80GB PCIe")


def test_table_invariants() -> None:
    for name, model in GPU_MODELS.items():
        assert model.name == name and model.vram_gb > 0 and model.vendor in ("NVIDIA", "AMD")
        assert model.architecture and model.memory_type and model.form_factor
        assert resolve_gpu_request(name).models == (name,)
    families = gpu_families()
    assert families["H100"] == ("H100 SXM", "H100 PCIe", "H100 NVL")
    for members in families.values():  # the data-sheet check can tell the memory variants apart
        for a in members:
            for b in members:
                if GPU_MODELS[a].vram_gb != GPU_MODELS[b].vram_gb:
                    assert not memory_fits(GPU_MODELS[a], GPU_MODELS[b].vram_gb)
    assert canonical_model("V100").name == "V100 16GB"  # legacy stored name
    with pytest.raises(KeyError, match="not a canonical GPU model"):
        canonical_model("A100")


@pytest.mark.parametrize(
    ("model", "memory", "price", "reason"),
    [
        ("H100 SXM", 80.0, 2.5, None),
        ("H100 NVL", 93.6, 2.5, None),
        ("L40S", 44.99, 0.9, None),
        ("RTX 3060", 8.0, 0.1, None),
        ("A100 40GB SXM", 80.0, 1.5, "memory outside data sheet"),
        ("A100 80GB SXM", 320.0, 1.5, "memory outside data sheet"),
        ("H100 SXM", 0.08, 2.5, "memory outside data sheet"),
        ("H100 SXM", 80.0, 0.0, "implausible price"),
        ("H100 SXM", 80.0, 2000.0, "implausible price"),
        ("Zorblax 9", 32.0, 1.0, "unknown GPU model"),
    ],
)
def test_datasheet_check(model: str, memory: float, price: float, reason: str | None) -> None:
    verdict = check_offer(model, memory_gb=memory, price_per_gpu_hour=price)
    assert (verdict.ok, verdict.reason) == (reason is None, reason)
    assert bool(verdict.detail) == (reason is not None)


def test_price_policy_is_configurable() -> None:
    strict = PricePolicy(min_usd_per_gpu_hour=0.5, max_usd_per_gpu_hour=5.0)
    assert check_offer("T4", memory_gb=16, price_per_gpu_hour=0.35, policy=strict).reason == "implausible price"
    assert check_offer("T4", memory_gb=16, price_per_gpu_hour=0.35).ok
