"""Load real price catalogs into Offers, for benchmarks, examples and tests.

Two formats are read (paths are always arguments; nothing here knows where data lives):

* SkyPilot-format catalog CSVs (``InstanceType, AcceleratorName, AcceleratorCount, vCPUs, MemoryGiB,
  GpuInfo, Price, SpotPrice, Region[, AvailabilityZone]``): one on-demand offer per row, plus a
  spot offer when ``SpotPrice`` is a positive number. VRAM per GPU comes from ``GpuInfo``.
* The GCP catalog flattened from Cyclenerd's pricing.yml (``machine_type, gpu_type, gpu_count,
  vcpus, ram_gb, region, hour_usd, hour_spot_usd, month_1y_cud_usd, ...``): on-demand and spot
  offers, with the 1-year committed-use price per hour (monthly / 730) as the committed price.

Rows without a usable price are skipped. Catalogs carry no capacity, so ``available_instances`` is
left unknown (the Problem's ``default_available_instances`` decides).
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from optimizer.schemas import Offer

HOURS_PER_MONTH = 730.0

#: GCP accelerator type -> (model name, VRAM GB per GPU).
GCP_GPUS: dict[str, tuple[str, float]] = {
    "a100": ("A100-40GB", 40.0),
    "a100-80gb": ("A100-80GB", 80.0),
    "h100-80gb": ("H100 SXM", 80.0),
    "h100-80gb-mega": ("H100 SXM", 80.0),
    "h200-141gb": ("H200", 141.0),
    "l4": ("L4", 24.0),
    "t4": ("T4", 16.0),
    "v100": ("V100", 16.0),
    "rtx6000": ("RTX PRO 6000", 96.0),
}


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value


def _vram_gb(gpu_info: str, count: float, memory_is_total: bool) -> float:
    try:
        info = ast.literal_eval(gpu_info)
        mib = float(info["Gpus"][0]["MemoryInfo"]["SizeInMiB"])
    except (ValueError, SyntaxError, KeyError, IndexError, TypeError):
        return 0.0
    return mib / 1024.0 / (count if memory_is_total else 1.0)


def _model_name(name: str, vram: float) -> str:
    if name.upper() == "A100":
        return "A100-80GB" if vram >= 60 else "A100-40GB"
    return name


def load_skypilot_csv(path: str | Path, provider: str, *, memory_is_total: bool = False) -> list[Offer]:
    """Offers of one provider from a SkyPilot-format catalog CSV.

    ``GpuInfo`` memory is per GPU in most catalogs (Lambda's) but the whole instance's in others
    (Vast's: 8x RTX 3090 lists 196608 MiB); ``memory_is_total`` says which.
    """
    out: list[Offer] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            price, count = _float(row.get("Price")), _float(row.get("AcceleratorCount"))
            if not count or count < 1:
                continue
            vram = _vram_gb(row.get("GpuInfo") or "", count, memory_is_total)
            region = (row.get("Region") or "").strip()
            zone = (row.get("AvailabilityZone") or "").strip() or None
            base = dict(
                provider=provider,
                region=region,
                zone=zone,
                instance_type=row.get("InstanceType") or "",
                gpu_model=_model_name(row.get("AcceleratorName") or "unknown", vram),
                gpus_per_instance=int(count),
                vram_gb_per_gpu=vram,
                vcpus=_float(row.get("vCPUs")),
                ram_gb=_float(row.get("MemoryGiB")),
            )
            if price is not None and price > 0:
                out.append(Offer(id=f"{provider}:{i}:od", price_per_hour=price, spot=False, **base))
            spot = _float(row.get("SpotPrice"))
            if spot is not None and spot > 0:
                out.append(Offer(id=f"{provider}:{i}:spot", price_per_hour=spot, spot=True, **base))
    return out


def load_gcp_cyclenerd_csv(path: str | Path) -> list[Offer]:
    """GCP GPU machine types x regions with on-demand, spot and 1-year committed prices."""
    out: list[Offer] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            gpu = GCP_GPUS.get((row.get("gpu_type") or "").strip())
            count = _float(row.get("gpu_count"))
            if gpu is None or not count or count < 1:  # fractional (shared) GPUs are not offered here
                continue
            model, vram = gpu
            month_1y = _float(row.get("month_1y_cud_usd"))
            base = dict(
                provider="gcp",
                region=row.get("region") or "",
                instance_type=row.get("machine_type") or "",
                gpu_model=model,
                gpus_per_instance=int(count),
                vram_gb_per_gpu=vram,
                vcpus=_float(row.get("vcpus")),
                ram_gb=_float(row.get("ram_gb")),
            )
            price = _float(row.get("hour_usd"))
            if price is not None and price > 0:
                committed = month_1y / HOURS_PER_MONTH if month_1y else None
                out.append(Offer(id=f"gcp:{i}:od", price_per_hour=price, committed_price_per_hour=committed,
                                 **base))
            spot = _float(row.get("hour_spot_usd"))
            if spot is not None and spot > 0:
                out.append(Offer(id=f"gcp:{i}:spot", price_per_hour=spot, spot=True, **base))
    return out


def load_shared_prices(prices_dir: str | Path) -> list[Offer]:
    """Every catalog in a directory laid out like shared/data/prices (GCP, Lambda, Vast)."""
    d = Path(prices_dir)
    return (
        load_gcp_cyclenerd_csv(d / "gcp_cyclenerd_gpu_instances_latest.csv")
        + load_skypilot_csv(d / "anycloud_lambda_gpu_vms.csv", "lambda")
        + load_skypilot_csv(d / "anycloud_vast_gpu_vms.csv", "vast", memory_is_total=True)
    )
