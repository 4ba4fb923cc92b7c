"""How each output names a canonical GPU model of the identity table.

Four vocabularies meet here: the Kubernetes label ``nvidia.com/gpu.product`` that NVIDIA GPU feature
discovery sets from the driver's device name (spaces become ``-``: 'NVIDIA-H100-80GB-HBM3'), GCP's
accelerator types for ``guest_accelerator`` ('nvidia-h100-80gb'), SkyPilot's accelerator names
('A100-80GB') and dstack's GPU names ('A100' with a memory size). A model missing from a table is
still rendered with a derived name (and the Kubernetes renderer says so in an annotation), never
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.gpu_specs import GPU_MODELS


@dataclass(frozen=True)
class Names:
    gfd_products: tuple[str, ...]
    gcp: str | None = None
    skypilot: str | None = None
    dstack: str | None = None


TABLE: dict[str, Names] = {
    "B200": Names(("NVIDIA-B200",), "nvidia-b200", "B200", "B200"),
    "H200": Names(("NVIDIA-H200", "NVIDIA-H200-141GB-HBM3e"), "nvidia-h200-141gb", "H200", "H200"),
    "H200 NVL": Names(("NVIDIA-H200-NVL",), None, "H200", "H200"),
    "GH200": Names(("NVIDIA-GH200-480GB",), None, "GH200", "GH200"),
    "H100 SXM": Names(("NVIDIA-H100-80GB-HBM3",), "nvidia-h100-80gb", "H100", "H100"),
    "H100 PCIe": Names(("NVIDIA-H100-PCIe",), None, "H100", "H100"),
    "H100 NVL": Names(("NVIDIA-H100-NVL",), None, "H100", "H100NVL"),
    "A100 80GB SXM": Names(("NVIDIA-A100-SXM4-80GB",), "nvidia-a100-80gb", "A100-80GB", "A100"),
    "A100 80GB PCIe": Names(("NVIDIA-A100-80GB-PCIe",), None, "A100-80GB", "A100"),
    "A100 40GB SXM": Names(("NVIDIA-A100-SXM4-40GB",), "nvidia-tesla-a100", "A100", "A100"),
    "A100 40GB PCIe": Names(("NVIDIA-A100-PCIE-40GB",), None, "A100", "A100"),
    "A40": Names(("NVIDIA-A40",), None, "A40", "A40"),
    "A10": Names(("NVIDIA-A10",), None, "A10", "A10"),
    "A10G": Names(("NVIDIA-A10G",), None, "A10G", "A10G"),
    "L40S": Names(("NVIDIA-L40S",), None, "L40S", "L40S"),
    "L40": Names(("NVIDIA-L40",), None, "L40", "L40"),
    "L4": Names(("NVIDIA-L4",), "nvidia-l4", "L4", "L4"),
    "T4": Names(("Tesla-T4",), "nvidia-tesla-t4", "T4", "T4"),
    "V100 16GB": Names(("Tesla-V100-SXM2-16GB", "Tesla-V100-PCIE-16GB"), "nvidia-tesla-v100", "V100", "V100"),
    "V100 32GB": Names(("Tesla-V100-SXM2-32GB",), None, "V100-32GB", "V100"),
    "P100": Names(("Tesla-P100-PCIE-16GB",), "nvidia-tesla-p100", "P100", "P100"),
    "P4": Names(("Tesla-P4",), "nvidia-tesla-p4", "P4", "P4"),
    "RTX PRO 6000": Names(("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition",), "nvidia-rtx-pro-6000",
                          "RTXPRO6000", "RTXPRO6000"),
    "RTX 6000 Ada": Names(("NVIDIA-RTX-6000-Ada-Generation",), None, "RTX6000-Ada", "RTX6000Ada"),
    "RTX 6000": Names(("Quadro-RTX-6000",), None, "RTX6000", "RTX6000"),
    "RTX A6000": Names(("NVIDIA-RTX-A6000",), None, "RTXA6000", "A6000"),
    "RTX A5000": Names(("NVIDIA-RTX-A5000",), None, "RTXA5000", "A5000"),
    "RTX 4090": Names(("NVIDIA-GeForce-RTX-4090",), None, "RTX4090", "RTX4090"),
    "RTX 3090": Names(("NVIDIA-GeForce-RTX-3090",), None, "RTX3090", "RTX3090"),
    "RTX 5090": Names(("NVIDIA-GeForce-RTX-5090",), None, "RTX5090", "RTX5090"),
    "MI300X": Names(("AMD-Instinct-MI300X",), None, "MI300X", "MI300X"),
}


def known(model: str) -> bool:
    return model in TABLE


def gfd_products(model: str) -> tuple[str, ...]:
    """``nvidia.com/gpu.product`` values of this model (a derived one for a model outside the table)."""
    names = TABLE.get(model)
    if names is not None:
        return names.gfd_products
    return ("NVIDIA-" + "-".join(model.split()),)


def model_of_product(product: str) -> str | None:
    """The canonical model whose GPUs report this ``nvidia.com/gpu.product`` (for checks)."""
    for model, names in TABLE.items():
        if product in names.gfd_products:
            return model
    return None


def gcp_accelerator(model: str) -> str:
    names = TABLE.get(model)
    if names is not None and names.gcp:
        return names.gcp
    return "nvidia-" + "-".join(model.lower().split())


def skypilot_name(model: str) -> str:
    names = TABLE.get(model)
    if names is not None and names.skypilot:
        return names.skypilot
    return "".join(model.split())


def dstack_gpu(model: str, count: int) -> str:
    """dstack's ``resources.gpu`` spec: ``<name>:<memory>:<count>`` ('A100:80GB:8')."""
    names = TABLE.get(model)
    name = names.dstack if names is not None and names.dstack else "".join(model.split())
    spec = GPU_MODELS.get(model)
    memory = f"{spec.vram_gb:g}GB:" if spec is not None else ""
    return f"{name}:{memory}{count}"


def vram_gb(model: str) -> float | None:
    spec = GPU_MODELS.get(model)
    return spec.vram_gb if spec is not None else None
