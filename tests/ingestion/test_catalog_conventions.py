"""Each catalog convention on real rows (../shared/data) or on excerpts of documented layouts.

Every case asserts what a buyer depends on: the canonical GPU, GPUs per instance, memory per GPU,
the price, and (for marketplaces) the seller. Excerpts copy real rows of the public SkyPilot catalog
(skypilot-org/skypilot-catalog, catalogs/v7/<cloud>/vms.csv) unless marked otherwise.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingestion.catalog_result import CatalogLoad
from ingestion.catalogs import load_catalog
from ingestion.conventions import CONVENTIONS, catalog_convention
from ingestion.errors import UnknownCatalogConvention
from ingestion.schemas import PriceQuote

DAY = date(2026, 7, 30)


def _one(load: CatalogLoad, instance: str, *, region: str = "", spot: bool = False) -> PriceQuote:
    found = [q for q in load.offers if q.instance_type == instance and q.spot == spot
             and (not region or q.region == region)]
    assert found, f"no offer {instance} {region} spot={spot}"
    return found[0]


def _facts(q: PriceQuote) -> tuple[str, int, float, float]:
    return q.gpu_model, q.gpu_count, q.vram_gb, q.price_per_hour


def _excerpt(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vms.csv"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def prices(shared_data: Path) -> Path:
    return shared_data / "prices"


def test_rows_are_all_accounted_for(prices: Path) -> None:
    for name, convention in [("anycloud_azure_gpu_vms.csv", "azure"), ("anycloud_vast_gpu_vms.csv", "vast"),
                             ("skypilot_v8_aws_p_family_gpu_vms.csv", "aws")]:
        load = load_catalog(prices / name, convention=convention, observed_at=DAY)
        offer_lines = len({(q.instance_type, q.region, q.zone) for q in load.offers})
        assert load.rows_read == offer_lines + len(load.quarantined) + sum(load.skipped.values()), name


def test_lambda_memory_per_gpu_and_names(prices: Path) -> None:
    load = load_catalog(prices / "anycloud_lambda_gpu_vms.csv", convention="lambda", observed_at=DAY)
    assert _facts(_one(load, "gpu_8x_a100", region="europe-central-1")) == ("A100 40GB SXM", 8, 40.0, 15.92)
    assert _facts(_one(load, "gpu_1x_a100", region="europe-central-1")) == ("A100 40GB PCIe", 1, 40.0, 1.99)
    assert _one(load, "gpu_8x_a100_80gb_sxm4").gpu_model == "A100 80GB SXM"
    assert _facts(_one(load, "gpu_8x_v100", region="europe-central-1"))[:3] == ("V100 16GB", 8, 16.0)
    assert _one(load, "gpu_1x_h100_pcie").gpu_model == "H100 PCIe"
    assert not load.quarantined and load.spot_offers == 0


def test_vast_memory_is_per_instance(prices: Path) -> None:
    load = load_catalog(prices / "anycloud_vast_gpu_vms.csv", convention="vast", observed_at=DAY)
    assert _facts(_one(load, "8x-RTX_3090-32-65536")) == ("RTX 3090", 8, 24.0, 1.29)
    assert _facts(_one(load, "2x-Tesla_V100-32-65536")) == ("V100 16GB", 2, 16.0, 0.35)
    assert _facts(_one(load, "2x-A100_SXM4-32-65536", region="Germany, DE, EU")) == ("A100 40GB SXM", 2, 40.0, 1.87)
    assert _facts(_one(load, "2x-A100_SXM4-32-65536", region="Montana, US, NA")) == ("A100 80GB SXM", 2, 80.0, 1.87)
    assert _one(load, "1x-H100_NVL-32-65536").gpu_model == "H100 NVL"
    assert load.spot_offers == 0  # SpotPrice 0.00 is no spot offer, not a free GPU


def test_vast_read_as_per_gpu_is_quarantined_not_upgraded(prices: Path) -> None:
    load = load_catalog(prices / "anycloud_vast_gpu_vms.csv", convention="skypilot", provider="vast",
                        observed_at=DAY)
    eight = [q for q in load.quarantined if q.record["InstanceType"] == "8x-RTX_3090-32-65536"]
    assert [q.reason for q in eight] == ["memory outside data sheet"]
    assert "192 GB per GPU" in eight[0].detail


def test_aws_per_zone_rows_and_spot(prices: Path) -> None:
    load = load_catalog(prices / "skypilot_v8_aws_p_family_gpu_vms.csv", convention="aws", observed_at=DAY)
    p4d = _one(load, "p4d.24xlarge", region="us-east-1")
    assert (*_facts(p4d), p4d.zone) == ("A100 40GB SXM", 8, 40.0, 21.957642, "use1-az1")
    assert _one(load, "p4d.24xlarge", region="us-east-1", spot=True).price_per_hour == 6.289
    assert _facts(_one(load, "p3dn.24xlarge", region="ap-northeast-1"))[:3] == ("V100 32GB", 8, 32.0)
    spot_only = _one(load, "p5e.48xlarge", region="ap-southeast-3", spot=True)
    assert (spot_only.gpu_model, spot_only.price_per_hour) == ("H200", 8.7348)
    assert not [q for q in load.offers if q.instance_type == "p5e.48xlarge" and not q.spot]
    assert load.quarantined_by_reason == {"no price": 4}  # p5e rows with neither price


def test_azure_names_sizes_and_fractions(prices: Path) -> None:
    load = load_catalog(prices / "anycloud_azure_gpu_vms.csv", convention="azure", observed_at=DAY)
    assert _facts(_one(load, "Standard_NC40ads_H100_v5", region="eastus")) == ("H100 NVL", 1, 94.0, 6.98)
    assert _facts(_one(load, "Standard_ND96isr_H100_v5", region="eastus")) == ("H100 SXM", 8, 80.0, 98.32)
    assert _facts(_one(load, "Standard_NV32as_v4", region="eastus")) == ("MI25", 1, 16.0, 1.864)
    fractions = {q.record["InstanceType"] for q in load.quarantined if q.reason == "fractional GPU"}
    assert {"Standard_NV4as_v4", "Standard_NV6ads_A10_v5", "Standard_NV12ads_A10_v5"} <= fractions
    assert set(load.quarantined_by_reason) == {"fractional GPU"}


def test_gcp_pricing_table_whole_vm(prices: Path) -> None:
    load = load_catalog(prices / "gcp_cyclenerd_gpu_instances_latest.csv", convention="gcp")
    a2 = _one(load, "a2-highgpu-1g", region="us-central1")
    assert _facts(a2) == ("A100 40GB SXM", 1, 40.0, 3.673385)
    assert _one(load, "g2-standard-48", region="us-central1").gpu_count == 4
    assert load.quarantined_by_reason == {"fractional GPU": 60}  # G4 vGPU slices


GCP_SPLIT = (
    "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n"
    "a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.73948,0.29576\n"
    "a2-highgpu-2g,24.0,170.0,,,,us-central1,us-central1-a,1.47895,0.59151\n"
    "a2-highgpu-1g,12.0,85.0,,,,us-west3,us-west3-b,0.8882,0.35526\n"
    "n2d-standard-8,8.0,32.0,,,,us-central1,us-central1-a,0.33797,0.07013\n"
    "n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.379998,0.08\n"
    ",,,A100,1,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},us-central1,us-central1-a,2.93391,1.1472\n"
    ",,,A100,2,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},us-central1,us-central1-a,5.86782,2.2944\n"
    ",,,T4,4,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]},us-central1,us-central1-a,1.4,0.56\n"
    ",,,T4,1,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]},europe-west4,europe-west4-b,0.35,0.14\n"
    ",,,tpu-v6e-1,1,tpu-v6e-1,us-central1,us-central1-b,2.7,0.64833\n"
)
"""Host and A100/TPU rows from catalogs/v7/gcp/vms.csv; the n1-standard-8 and T4 rows are written
from the same layout with illustrative prices."""


def test_gcp_skypilot_split_layout_sums_host_and_accelerator(tmp_path: Path) -> None:
    load = load_catalog(_excerpt(tmp_path, GCP_SPLIT), convention="gcp-skypilot", observed_at=DAY)
    a2 = _one(load, "a2-highgpu-1g", region="us-central1")
    assert (a2.gpu_model, a2.gpu_count, a2.vram_gb, a2.zone) == ("A100 40GB SXM", 1, 40.0, "us-central1-a")
    assert a2.price_per_hour == pytest.approx(0.73948 + 2.93391)  # = Cyclenerd's 3.673385 for the VM
    assert _one(load, "a2-highgpu-1g", spot=True).price_per_hour == pytest.approx(0.29576 + 1.1472)
    assert _one(load, "a2-highgpu-2g").price_per_hour == pytest.approx(1.47895 + 5.86782)
    t4 = _one(load, "n1-standard-8+4xT4")
    assert _facts(t4) == ("T4", 4, 16.0, pytest.approx(0.379998 + 1.4))
    assert load.quarantined_by_reason == {"no accelerator row": 1, "no host row": 1}
    assert load.skipped == {"no GPU (CPU-only or host-only row)": 2, "accelerator price summed into its VM": 2,
                            "TPU, not a GPU": 1}
    assert load.rows_read == 10


def test_gcp_skypilot_combined_layout(tmp_path: Path) -> None:
    text = (
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,"
        "AvailabilityZone,Generation,QuotaGroup,PremiumStorageCapable\n"
        "a2-highgpu-1g,A100,1,12,85,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},3.67339,2.12081,"
        "us-central1,us-central1-a,,,\n"
        "a2-ultragpu-8g,A100-80GB,8,96,1360,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 81920}}]},40.22162,"
        "23.22576,us-central1,us-central1-a,,,\n"
    )  # anycloud-sh/catalog gcp/vms.csv rows
    load = load_catalog(_excerpt(tmp_path, text), convention="gcp-skypilot", observed_at=DAY)
    assert _facts(_one(load, "a2-highgpu-1g")) == ("A100 40GB SXM", 1, 40.0, 3.67339)
    assert _facts(_one(load, "a2-ultragpu-8g")) == ("A100 80GB SXM", 8, 80.0, 40.22162)
    assert not load.quarantined


SHADEFORM = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\n"
    "hyperstack_H100x8-NVLINK,H100,8.0,252.0,1440,15.6,montreal-canada-2,\"{'Gpus': [{'Name': 'H100', 'Count': 8.0}]}\",\n"
    "latitude_H100x8-NVLINk,H100,8.0,128.0,1536,14.34,dallas-usa-1,\"{'Gpus': [{'Name': 'H100', 'Count': 8.0}]}\",\n"
    "nebius_H200-sxm5x8-NVLINK,H200,8.0,128.0,1600,28.44,paris-france-2,\"{'Gpus': [{'Name': 'H200', 'Count': 8.0}]}\",\n"
    "paperspace_A100-sxm4-80Gx8,A100-80G,8.0,96.0,720,25.76,newyork-usa-1,\"{'Gpus': [{'Name': 'A100-80G', 'Count': 8.0}]}\",\n"
    "datacrunch_RTX6000Adax8,RTX6000Ada,8.0,80.0,480,8.48,helsinki-finland-5,\"{'Gpus': [{'Name': 'RTX6000Ada', 'Count': 8.0}]}\",\n"
    "massedcompute_A6000-plus,A6000,1.0,12.0,64,0.57,desmoines-usa-1,\"{'Gpus': [{'Name': 'A6000', 'Count': 1.0}]}\",\n"
    "paperspace_V100-32Gx2,V100-32G,2.0,16.0,60,4.68,newyork-usa-1,\"{'Gpus': [{'Name': 'V100-32G', 'Count': 2.0}]}\",\n"
)


def test_shadeform_sellers_and_nvlink_boards(tmp_path: Path) -> None:
    load = load_catalog(_excerpt(tmp_path, SHADEFORM), convention="shadeform", observed_at=DAY)
    got = {q.instance_type: (q.provider, q.seller, *_facts(q)) for q in load.offers}
    assert got == {
        "hyperstack_H100x8-NVLINK": ("shadeform", "hyperstack", "H100 SXM", 8, 80.0, 15.6),
        "latitude_H100x8-NVLINk": ("shadeform", "latitude", "H100 SXM", 8, 80.0, 14.34),
        "nebius_H200-sxm5x8-NVLINK": ("shadeform", "nebius", "H200", 8, 141.0, 28.44),
        "paperspace_A100-sxm4-80Gx8": ("shadeform", "paperspace", "A100 80GB SXM", 8, 80.0, 25.76),
        "datacrunch_RTX6000Adax8": ("shadeform", "datacrunch", "RTX 6000 Ada", 8, 48.0, 8.48),
        "massedcompute_A6000-plus": ("shadeform", "massedcompute", "RTX A6000", 1, 48.0, 0.57),
        "paperspace_V100-32Gx2": ("shadeform", "paperspace", "V100 32GB", 2, 32.0, 4.68),
    }


RUNPOD = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Region,SpotPrice,Price,AvailabilityZone,GpuInfo\n"
    "1x_A100-80GB_SECURE,A100-80GB,1.0,8.0,117.0,CA,1.59,1.59,CA-MTL-1,\"{'Gpus': [{'Name': 'A100 PCIe', "
    "'Count': 1, 'MemoryInfo': {'SizeInMiB': 80}}], 'TotalGpuMemoryInMiB': 80}\"\n"
)
"""Written from a SkyPilot-format RunPod row whose 'SizeInMiB' holds GB."""


def test_runpod_gb_labelled_mib(tmp_path: Path) -> None:
    path = _excerpt(tmp_path, RUNPOD)
    good = load_catalog(path, convention="runpod", observed_at=DAY)
    assert _facts(_one(good, "1x_A100-80GB_SECURE")) == ("A100 80GB SXM", 1, 80.0, 1.59)
    misread = load_catalog(path, convention="skypilot", provider="runpod", observed_at=DAY)
    assert not misread.offers and misread.quarantined_by_reason == {"memory outside data sheet": 1}


PER_INSTANCE = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo\n"
    "8x_A100-40GB,A100,8.0,96.0,368.0,16.8,us,\"{'Gpus': [{'Name': 'A100', 'Count': 8, 'MemoryInfo': "
    "{'SizeInMiB': 327680}}]}\"\n"
    "2x_V100,V100,2.0,16.0,60.0,0.9,us,\"{'Gpus': [{'Name': 'V100', 'Count': 2, 'MemoryInfo': {'SizeInMiB': 32768}}]}\"\n"
)
"""Written from the documented layout of a GPU cloud whose GpuInfo memory is the instance's."""


def test_memory_per_instance_convention(tmp_path: Path) -> None:
    path = _excerpt(tmp_path, PER_INSTANCE)
    good = load_catalog(path, convention="skypilot-per-instance", provider="gpucloud", observed_at=DAY)
    assert _facts(_one(good, "8x_A100-40GB")) == ("A100 40GB SXM", 8, 40.0, 16.8)
    assert _facts(_one(good, "2x_V100")) == ("V100 16GB", 2, 16.0, 0.9)
    misread = load_catalog(path, convention="skypilot", provider="gpucloud", observed_at=DAY)
    assert [(q.record["InstanceType"], q.reason) for q in misread.quarantined] == [
        ("8x_A100-40GB", "memory outside data sheet")
    ]  # 320 GB per GPU is no A100; it is never read as an 'A100 80GB'


CUDO = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\n"
    "epyc-genoa-h100-nvl-pcie_2x8v16gb,H100,2.0,8,16,5.057600000000001,au-melbourne-1,\"{'Gpus': [{'Name': 'H100', "
    "'Manufacturer': 'NVIDIA', 'Count': '2.0', 'MemoryInfo': {'SizeInMiB': 96256}}], 'TotalGpuMemoryInMiB': 192512}\",\n"
    "sapphire-rapids-h100_1x2v4gb,H100-SXM,1.0,2,4,1.8214000000000001,no-kristiansand-1,\"{'Gpus': [{'Name': "
    "'H100-SXM', 'Manufacturer': 'NVIDIA', 'Count': '1.0', 'MemoryInfo': {'SizeInMiB': 81920}}], "
    "'TotalGpuMemoryInMiB': 81920}\",\n"
    "intel-broadwell-v100_2x16v32gb,V100,2.0,16,32,0.94,us-newyork-1,\"{'Gpus': [{'Name': 'V100', "
    "'Manufacturer': 'NVIDIA', 'Count': '2.0', 'MemoryInfo': {'SizeInMiB': 16384}}], 'TotalGpuMemoryInMiB': 32768}\",\n"
)


def test_cudo_nvl_and_sxm(tmp_path: Path) -> None:
    load = load_catalog(_excerpt(tmp_path, CUDO), convention="cudo", observed_at=DAY)
    assert _facts(_one(load, "epyc-genoa-h100-nvl-pcie_2x8v16gb")) == ("H100 NVL", 2, 94.0, 5.057600000000001)
    assert _one(load, "sapphire-rapids-h100_1x2v4gb").gpu_model == "H100 SXM"
    assert _facts(_one(load, "intel-broadwell-v100_2x16v32gb"))[:3] == ("V100 16GB", 2, 16.0)


def test_unknown_convention_names_the_valid_keys() -> None:
    with pytest.raises(UnknownCatalogConvention, match="shadeform") as info:
        catalog_convention("shadefrom")
    assert "'shadefrom'" in str(info.value)
    assert all(key == conv.key for key, conv in CONVENTIONS.items())
