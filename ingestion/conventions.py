"""How each catalog source writes its rows, declared as data (one entry per source).

Real catalogs in the same nominal format disagree (see ../shared/data/README.md): SkyPilot's
``GpuInfo`` memory is per GPU at AWS and Lambda, per instance at Vast, a number labelled MiB that is
really GB at RunPod, and absent at Azure and Shadeform; SkyPilot's GCP catalog prices a VM as a host
row plus an accelerator row; a marketplace names its seller in the instance type. A loader that
guesses any of these misreads whole catalogs (8x A100 40GB read as "A100 80GB", V100 16GB x2 read
as "V100 32GB"), so each source states its conventions here and `ingestion.catalogs` follows them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ingestion.errors import UnknownCatalogConvention

CatalogFormat = Literal["skypilot", "gcp-pricing"]
MemoryScope = Literal["per_gpu", "per_instance", "absent"]
MemoryUnit = Literal["MiB", "GB"]
PriceComposition = Literal["instance", "gcp_host_plus_accelerator"]
NameSource = Literal["accelerator", "lambda", "counted", "seller", "aws"]


class CatalogConvention(BaseModel):
    """The conventions of one catalog source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="Registry key, given to `load_catalog(convention=...)`.")
    provider: str = Field(pattern=r"^[a-z0-9_]+$", description="CloudArb provider key of its offers.")
    format: CatalogFormat
    memory_scope: MemoryScope = Field(
        description="GpuInfo memory: per GPU, for the whole instance, or absent (data sheet used)."
    )
    memory_unit: MemoryUnit = Field(default="MiB", description="What the 'SizeInMiB' number really is.")
    price: PriceComposition = Field(
        default="instance",
        description="'instance': Price is the whole VM; 'gcp_host_plus_accelerator': host row + GPU row.",
    )
    spot_column: str | None = Field(default="SpotPrice", description="None: the source has no spot prices.")
    name_source: NameSource = Field(
        default="accelerator",
        description="Where the most precise GPU name is: AcceleratorName, or parsed from the instance type.",
    )
    seller_in_instance_type: bool = Field(
        default=False, description="Marketplace: the instance type starts with '<seller>_'."
    )
    instance_models: tuple[tuple[str, str], ...] = Field(
        default=(), description="Instance type (exact) -> canonical model, where the name is not enough."
    )
    fractional_sizes: tuple[tuple[str, float], ...] = Field(
        default=(), description="Instance type (exact) -> GPUs per instance below 1 (quarantined)."
    )
    gcp_attach_host: str = Field(
        default="n1-standard-8",
        description="GCP host priced with an attached T4/V100/P100/P4/K80 (SkyPilot's default host).",
    )
    note: str = ""


# Azure sizes -> GPU (Microsoft's GPU size pages; the same facts as providers/azure_skus.py, which
# is not imported here so that loading a catalog never imports the provider clients).
_AZURE_MODELS: tuple[tuple[str, str], ...] = (
    ("Standard_NC6s_v3", "V100 16GB"), ("Standard_NC12s_v3", "V100 16GB"),
    ("Standard_NC24s_v3", "V100 16GB"), ("Standard_NC24rs_v3", "V100 16GB"),
    ("Standard_ND40rs_v2", "V100 32GB"),
    ("Standard_NC24ads_A100_v4", "A100 80GB PCIe"), ("Standard_NC48ads_A100_v4", "A100 80GB PCIe"),
    ("Standard_NC96ads_A100_v4", "A100 80GB PCIe"),
    ("Standard_ND96asr_v4", "A100 40GB SXM"), ("Standard_ND96amsr_A100_v4", "A100 80GB SXM"),
    ("Standard_NC40ads_H100_v5", "H100 NVL"), ("Standard_NC80adis_H100_v5", "H100 NVL"),
    ("Standard_NCC40ads_H100_v5", "H100 NVL"),
    ("Standard_ND96isr_H100_v5", "H100 SXM"), ("Standard_ND96isr_H200_v5", "H200"),
    ("Standard_ND96isr_MI300X_v5", "MI300X"),
    ("Standard_NV12s_v3", "M60"), ("Standard_NV24s_v3", "M60"), ("Standard_NV48s_v3", "M60"),
    ("Standard_NV32as_v4", "MI25"),
)
# NVv4: 1/8, 1/4 and 1/2 of an MI25 listed as AcceleratorCount 1 (Azure's NVv4 size table).
_AZURE_FRACTIONS = (
    ("Standard_NV4as_v4", 0.125), ("Standard_NV8as_v4", 0.25), ("Standard_NV16as_v4", 0.5),
)

_CONVENTIONS: tuple[CatalogConvention, ...] = (
    CatalogConvention(
        key="lambda", provider="lambda", format="skypilot", memory_scope="per_gpu", name_source="lambda",
        note="anycloud/SkyPilot lambda vms.csv; the instance type names GPU, count and form factor.",
    ),
    CatalogConvention(
        key="vast", provider="vast", format="skypilot", memory_scope="per_instance", name_source="counted",
        note="anycloud/SkyPilot vast vms.csv: 'Nx-<GPU>-cpus-ram'; 2x RTX 3090 lists 49152 MiB in all.",
    ),
    CatalogConvention(
        key="aws", provider="aws", format="skypilot", memory_scope="per_gpu", name_source="aws",
        note="SkyPilot v8 aws vms.csv; one row per availability zone with that zone's spot price.",
    ),
    CatalogConvention(
        key="azure", provider="azure", format="skypilot", memory_scope="absent",
        instance_models=_AZURE_MODELS, fractional_sizes=_AZURE_FRACTIONS,
        note="anycloud azure vms.csv: GpuInfo is a bare name; NC H100 v5 is the H100 NVL (94 GB).",
    ),
    CatalogConvention(
        key="gcp-skypilot", provider="gcp", format="skypilot", memory_scope="per_gpu",
        price="gcp_host_plus_accelerator",
        note="SkyPilot gcp vms.csv, both layouts: whole-VM rows, or host rows + accelerator rows summed.",
    ),
    CatalogConvention(
        key="gcp", provider="gcp", format="gcp-pricing", memory_scope="absent", spot_column="hour_spot_usd",
        note="Cyclenerd pricing table: hour_usd is the whole VM (GCP GPU machine types bundle GPUs).",
    ),
    CatalogConvention(
        key="shadeform", provider="shadeform", format="skypilot", memory_scope="absent",
        name_source="seller", seller_in_instance_type=True, spot_column=None,
        note="SkyPilot shadeform vms.csv: '<seller>_<GPU>[xN][-NVLINK]'; 18 sellers resell here.",
    ),
    CatalogConvention(
        key="runpod", provider="runpod", format="skypilot", memory_scope="per_gpu", memory_unit="GB",
        note="SkyPilot runpod vms.csv: 'SizeInMiB': 80 is 80 GB.",
    ),
    CatalogConvention(
        key="cudo", provider="cudo", format="skypilot", memory_scope="per_gpu",
        note="SkyPilot cudo vms.csv; memory per GPU in MiB.",
    ),
    CatalogConvention(
        key="skypilot", provider="skypilot", format="skypilot", memory_scope="per_gpu",
        note="Generic SkyPilot catalog with per-GPU MiB; pass provider= to name the seller.",
    ),
    CatalogConvention(
        key="skypilot-per-instance", provider="skypilot", format="skypilot", memory_scope="per_instance",
        note="Generic SkyPilot catalog whose GpuInfo memory is the whole instance's.",
    ),
)

CONVENTIONS: dict[str, CatalogConvention] = {c.key: c for c in _CONVENTIONS}
"""Every registered catalog convention by key."""

GCP_BUNDLED: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = (
    ("a2-highgpu-", "A100", ()),
    ("a2-megagpu-", "A100", ()),
    ("a2-ultragpu-", "A100-80GB", ()),
    ("a3-highgpu-", "H100", ()),
    ("a3-edgegpu-", "H100", ()),
    ("a3-megagpu-", "H100-MEGA", ()),
    ("a3-ultragpu-", "H200", ()),
    ("a4-highgpu-", "B200", ()),
    ("g2-standard-", "L4", ((4, 1), (8, 1), (12, 1), (16, 1), (32, 1), (24, 2), (48, 4), (96, 8))),
    ("g4-standard-", "RTXPRO6000", ((48, 1), (96, 2), (192, 4), (384, 8))),
)
"""GCP machine families that bundle their GPUs: prefix, SkyPilot accelerator name, and for g2/g4
(whose names give vCPUs, not GPUs) vCPUs -> GPUs from Google's machine-type tables. a2/a3/a4 names
end in '-<N>g'."""

GCP_ATTACHABLE: frozenset[str] = frozenset({"t4", "v100", "p100", "p4", "k80"})
"""GPUs attached to an N1 host (squeezed SkyPilot names)."""


def catalog_convention(key: str) -> CatalogConvention:
    """The convention registered under ``key``; the error lists the valid keys."""
    found = CONVENTIONS.get(key)
    if found is None:
        raise UnknownCatalogConvention(f"unknown catalog convention {key!r}; known: {', '.join(CONVENTIONS)}")
    return found
