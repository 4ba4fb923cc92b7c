"""The normalization table: every provider spelling we know of -> one canonical model."""

from __future__ import annotations

import pytest

from ingestion.gpus import GPU_MODELS, clean_name, resolve_aws_instance, resolve_gpu, resolve_lambda_instance

# (provider, raw name, instance type, per-GPU memory reported, expected canonical model)
TABLE: list[tuple[str, str, str, float | None, str]] = [
    # SkyPilot accelerator names
    ("", "A100-80GB", "", None, "A100 80GB SXM"),
    ("", "A100", "", None, "A100 40GB SXM"),
    ("", "A100", "", 80.0, "A100 80GB SXM"),
    ("", "H100", "", None, "H100 SXM"),
    ("", "H100-MEGA", "", None, "H100 SXM"),
    ("", "RTX5090", "", None, "RTX 5090"),
    ("", "RTX6000-Ada", "", None, "RTX 6000 Ada"),
    ("", "RTXPRO6000WS", "", None, "RTX PRO 6000"),
    ("", "L40S", "", None, "L40S"),
    ("", "V100-32GB", "", None, "V100 32GB"),
    ("", "A10G", "", None, "A10G"),
    ("", "T4", "", None, "T4"),
    # GCP accelerator types (Compute API) and the pricing table's gpu_type
    ("gcp", "nvidia-h100-80gb", "a3-highgpu-8g", None, "H100 SXM"),
    ("gcp", "nvidia-h100-mega-80gb", "a3-megagpu-8g", None, "H100 SXM"),
    ("gcp", "nvidia-tesla-a100", "a2-highgpu-1g", None, "A100 40GB SXM"),
    ("gcp", "nvidia-a100-80gb", "a2-ultragpu-1g", None, "A100 80GB SXM"),
    ("gcp", "a100", "a2-highgpu-1g", None, "A100 40GB SXM"),
    ("gcp", "a100-80gb", "a2-ultragpu-1g", None, "A100 80GB SXM"),
    ("gcp", "h100-80gb-mega", "a3-megagpu-8g", None, "H100 SXM"),
    ("gcp", "l4", "g2-standard-4", None, "L4"),
    ("gcp", "nvidia-l4", "g2-standard-4", None, "L4"),
    ("gcp", "nvidia-tesla-t4", "n1-standard-4", None, "T4"),
    ("gcp", "nvidia-tesla-v100", "n1-standard-8", None, "V100 16GB"),
    ("gcp", "rtx6000", "g4-standard-48", None, "RTX PRO 6000"),
    ("gcp", "nvidia-rtx-pro-6000", "g4-standard-48", None, "RTX PRO 6000"),
    ("gcp", "nvidia-h200-141gb", "a3-ultragpu-8g", None, "H200"),
    ("gcp", "nvidia-b200", "a4-highgpu-8g", None, "B200"),
    # Azure meter / SKU spellings
    ("azure", "A100 PCIe", "Standard_NC24ads_A100_v4", 80.0, "A100 80GB PCIe"),
    ("azure", "H100 NVL", "Standard_NC40ads_H100_v5", None, "H100 NVL"),
    ("azure", "H100", "Standard_ND96isr_H100_v5", None, "H100 SXM"),
    ("azure", "V100", "Standard_NC6s_v3", None, "V100 16GB"),
    # RunPod gpuTypes ids
    ("runpod", "NVIDIA GeForce RTX 4090", "", 24.0, "RTX 4090"),
    ("runpod", "NVIDIA H100 80GB HBM3", "", 80.0, "H100 SXM"),
    ("runpod", "NVIDIA H100 PCIe", "", 80.0, "H100 PCIe"),
    ("runpod", "NVIDIA H100 NVL", "", 94.0, "H100 NVL"),
    ("runpod", "NVIDIA A100 80GB PCIe", "", 80.0, "A100 80GB PCIe"),
    ("runpod", "NVIDIA A100-SXM4-80GB", "", 80.0, "A100 80GB SXM"),
    ("runpod", "NVIDIA RTX A6000", "", 48.0, "RTX A6000"),
    ("runpod", "NVIDIA RTX 6000 Ada Generation", "", 48.0, "RTX 6000 Ada"),
    ("runpod", "NVIDIA L40S", "", 48.0, "L40S"),
    ("runpod", "Tesla V100-SXM2-32GB", "", 32.0, "V100 32GB"),
    ("runpod", "AMD Instinct MI300X OAM", "", 192.0, "MI300X"),
    ("runpod", "NVIDIA H200", "", 141.0, "H200"),
    ("runpod", "NVIDIA B200", "", 180.0, "B200"),
    # Vast gpu_name
    ("vast", "RTX 4090", "", 24.0, "RTX 4090"),
    ("vast", "H100 SXM", "", 80.0, "H100 SXM"),
    ("vast", "H100 NVL", "", 94.0, "H100 NVL"),
    ("vast", "A100 SXM4", "", 80.0, "A100 80GB SXM"),
    ("vast", "A100 SXM4", "", 40.0, "A100 40GB SXM"),
    ("vast", "A100 PCIE", "", 80.0, "A100 80GB PCIe"),
    ("vast", "A100X", "", 80.0, "A100 80GB PCIe"),
    ("vast", "RTX 4070S Ti", "", 16.0, "RTX 4070 Ti Super"),
    ("vast", "Q RTX 6000", "", 24.0, "RTX 6000"),
    ("vast", "Tesla V100", "", 16.0, "V100 16GB"),
    ("vast", "RTX 5880Ada", "", 48.0, "RTX 5880 Ada"),
    # TensorDock marketplace keys
    ("tensordock", "geforcertx4090-pcie-24gb", "", None, "RTX 4090"),
    ("tensordock", "a100-pcie-80gb", "", None, "A100 80GB PCIe"),
    ("tensordock", "h100-sxm5-80gb", "", None, "H100 SXM"),
    ("tensordock", "rtxa6000-pcie-48gb", "", None, "RTX A6000"),
    ("tensordock", "l40-pcie-48gb", "", None, "L40"),
    ("tensordock", "v100-sxm2-16gb", "", None, "V100 16GB"),
    # Lambda gpu_description-ish spellings
    ("lambda", "RTX6000", "gpu_1x_rtx6000", None, "RTX 6000"),
    ("lambda", "A6000", "gpu_1x_a6000", None, "RTX A6000"),
    ("lambda", "GH200", "gpu_1x_gh200", None, "GH200"),
]


@pytest.mark.parametrize(("provider", "raw", "instance_type", "vram", "expected"), TABLE)
def test_normalization_table(
    provider: str, raw: str, instance_type: str, vram: float | None, expected: str
) -> None:
    match = resolve_gpu(raw, provider=provider, instance_type=instance_type, vram_gb=vram)
    assert match.known, raw
    assert match.model == expected
    assert match.vram_gb == GPU_MODELS[expected].vram_gb
    assert match.raw == raw


@pytest.mark.parametrize(
    ("instance_type", "model", "count"),
    [
        ("gpu_1x_h100_sxm5", "H100 SXM", 1),
        ("gpu_8x_h100_sxm5", "H100 SXM", 8),
        ("gpu_1x_h100_pcie", "H100 PCIe", 1),
        ("gpu_8x_a100_80gb_sxm4", "A100 80GB SXM", 8),
        ("gpu_1x_a100_sxm4", "A100 40GB SXM", 1),
        ("gpu_8x_v100_n", "V100 16GB", 8),
        ("gpu_4x_b200_sxm6", "B200", 4),
        ("gpu_1x_a10", "A10", 1),
    ],
)
def test_lambda_instance_names(instance_type: str, model: str, count: int) -> None:
    resolved = resolve_lambda_instance(instance_type)
    assert resolved is not None
    assert (resolved[0].model, resolved[1]) == (model, count)


def test_lambda_non_gpu_name() -> None:
    assert resolve_lambda_instance("cpu_4x_general") is None


@pytest.mark.parametrize(
    ("instance_type", "model"),
    [
        ("p5.48xlarge", "H100 SXM"),
        ("p5en.48xlarge", "H200"),
        ("p4d.24xlarge", "A100 40GB SXM"),
        ("p4de.24xlarge", "A100 80GB SXM"),
        ("p3.2xlarge", "V100 16GB"),
        ("p3dn.24xlarge", "V100 32GB"),
        ("g6e.xlarge", "L40S"),
        ("g6.xlarge", "L4"),
        ("g5.xlarge", "A10G"),
        ("g4dn.xlarge", "T4"),
        ("p6-b200.48xlarge", "B200"),
    ],
)
def test_aws_families(instance_type: str, model: str) -> None:
    match = resolve_aws_instance(instance_type)
    assert match is not None and match.model == model


def test_aws_non_gpu_family() -> None:
    assert resolve_aws_instance("m5.large") is None
    assert resolve_aws_instance("trn1.32xlarge") is None


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [("NVIDIA Foo X9000", "Foo X9000"), ("  Some_New  GPU ", "Some New GPU"), ("AMD Instinct MI999", "Instinct MI999")],
)
def test_unknown_names_are_kept_and_flagged(raw: str, cleaned: str) -> None:
    match = resolve_gpu(raw, vram_gb=48.0)
    assert not match.known
    assert match.model == cleaned == clean_name(raw)
    assert match.raw == raw
    assert match.vram_gb == 48.0


def test_unknown_without_memory_has_zero_vram() -> None:
    assert resolve_gpu("Mystery").vram_gb == 0.0


def test_rtx6000_depends_on_provider() -> None:
    assert resolve_gpu("rtx6000", provider="gcp").model == "RTX PRO 6000"
    assert resolve_gpu("RTX6000", provider="lambda").model == "RTX 6000"


def test_every_alias_target_is_a_canonical_model() -> None:
    from ingestion import gpus

    targets = set(gpus.ALIAS_KEYS.values()) | set(gpus._PROVIDER_ALIASES.values()) | set(gpus._AWS_FAMILIES.values())
    assert targets <= set(GPU_MODELS)
