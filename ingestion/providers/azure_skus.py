"""Azure GPU VM sizes: what the Retail Prices API does not say (GPU model and count, vCPUs, RAM).

From Microsoft's "Sizes for virtual machines in Azure" pages (GPU - accelerated compute families
NC, ND, NV). Sizes with a fraction of a GPU (NVadsA10 v5 below 36 vCPUs) are left out: a quote
holds whole GPUs.
"""

from __future__ import annotations

from typing import NamedTuple


class AzureSize(NamedTuple):
    gpu_name: str
    gpu_count: int
    vcpus: int
    ram_gb: float


AZURE_GPU_SIZES: dict[str, AzureSize] = {
    # NCv3 (V100 16 GB)
    "Standard_NC6s_v3": AzureSize("V100 16GB", 1, 6, 112),
    "Standard_NC12s_v3": AzureSize("V100 16GB", 2, 12, 224),
    "Standard_NC24s_v3": AzureSize("V100 16GB", 4, 24, 448),
    "Standard_NC24rs_v3": AzureSize("V100 16GB", 4, 24, 448),
    # NDv2 (V100 32 GB)
    "Standard_ND40rs_v2": AzureSize("V100 32GB", 8, 40, 672),
    # NCasT4_v3
    "Standard_NC4as_T4_v3": AzureSize("T4", 1, 4, 28),
    "Standard_NC8as_T4_v3": AzureSize("T4", 1, 8, 56),
    "Standard_NC16as_T4_v3": AzureSize("T4", 1, 16, 110),
    "Standard_NC64as_T4_v3": AzureSize("T4", 4, 64, 440),
    # NC A100 v4 (A100 80 GB PCIe)
    "Standard_NC24ads_A100_v4": AzureSize("A100 80GB PCIe", 1, 24, 220),
    "Standard_NC48ads_A100_v4": AzureSize("A100 80GB PCIe", 2, 48, 440),
    "Standard_NC96ads_A100_v4": AzureSize("A100 80GB PCIe", 4, 96, 880),
    # ND A100 v4 (A100 40 GB SXM) and NDm A100 v4 (A100 80 GB SXM)
    "Standard_ND96asr_v4": AzureSize("A100 40GB SXM", 8, 96, 900),
    "Standard_ND96amsr_A100_v4": AzureSize("A100 80GB SXM", 8, 96, 1900),
    # NCads H100 v5 (H100 NVL)
    "Standard_NC40ads_H100_v5": AzureSize("H100 NVL", 1, 40, 320),
    "Standard_NC80adis_H100_v5": AzureSize("H100 NVL", 2, 80, 640),
    # ND H100 v5 / ND H200 v5 / ND MI300X v5
    "Standard_ND96isr_H100_v5": AzureSize("H100 SXM", 8, 96, 1900),
    "Standard_ND96isr_H200_v5": AzureSize("H200", 8, 96, 1850),
    "Standard_ND96isr_MI300X_v5": AzureSize("MI300X", 8, 96, 1850),
    # NVadsA10 v5, whole-GPU sizes only
    "Standard_NV36ads_A10_v5": AzureSize("A10", 1, 36, 440),
    "Standard_NV72ads_A10_v5": AzureSize("A10", 2, 72, 880),
}
