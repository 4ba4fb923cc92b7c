"""SkyPilot-format ``vms.csv`` rows -> candidate quotes, following the source's `CatalogConvention`.

Columns (read by header; the order differs between clouds and catalog versions): InstanceType,
AcceleratorName, AcceleratorCount, vCPUs, MemoryGiB, GpuInfo, Price, SpotPrice, Region and, for
some clouds, AvailabilityZone. Price and SpotPrice are USD per instance-hour; an empty or zero
SpotPrice means no spot offer, never a free one.

SkyPilot's GCP catalog comes in two layouts, both read here: whole-VM rows (InstanceType and
AcceleratorName both set), or a host row (InstanceType, no accelerator) plus an accelerator row
(no InstanceType) whose prices add up to the VM's. `compose_gcp_vms` turns the second layout into
the first: bundled families (a2/a3/a4/g2/g4) pair with the accelerator row of their own GPU count in
the same zone; T4/V100/P100/P4/K80 rows are priced on the convention's N1 host.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ingestion.catalog_result import LoadCollector
from ingestion.conventions import GCP_ATTACHABLE, GCP_BUNDLED, CatalogConvention
from ingestion.gpu_specs import GPU_MODELS
from ingestion.gpus import GpuMatch, resolve_aws_instance, resolve_gpu, resolve_lambda_instance, squeeze

Record = dict[str, str]

_COUNTED_TYPE = re.compile(r"^\d+x-(?P<gpu>.+)-\d+-\d+$")
_SELLER_COUNT = re.compile(r"x\d+(?=-|$)")
_GCP_GPU_COUNT = re.compile(r"-(\d+)g(?:-|$)")


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    return float(text)


def memory_per_gpu_gb(gpu_info: str, count: int, convention: CatalogConvention) -> float | None:
    """Memory per GPU in GB from a GpuInfo cell, as the convention says to read it; None if absent."""
    if convention.memory_scope == "absent" or not gpu_info.strip().startswith("{"):
        return None
    try:
        info = ast.literal_eval(gpu_info)
        gpus = info.get("Gpus") or [{}]
        size = (gpus[0].get("MemoryInfo") or {}).get("SizeInMiB") or info.get("TotalGpuMemoryInMiB")
        value = float(size) if size is not None else 0.0
    except (ValueError, SyntaxError, TypeError, AttributeError):
        return None
    if value <= 0:
        return None
    if convention.memory_scope == "per_instance":
        value /= count
    return value / 1024 if convention.memory_unit == "MiB" else value


def _name_in_instance(instance: str, convention: CatalogConvention) -> str | None:
    """The GPU spelled in the instance type, where the source puts it there."""
    if convention.name_source == "counted":
        found = _COUNTED_TYPE.match(instance)
        return found.group("gpu") if found else None
    if convention.name_source == "seller" and "_" in instance:
        return _SELLER_COUNT.sub("", instance.split("_", 1)[1])
    return None


def resolve_row_gpu(
    accelerator: str, instance: str, *, convention: CatalogConvention, provider: str, memory_gb: float | None
) -> GpuMatch:
    """The row's canonical GPU: a declared instance type, then the instance name, then AcceleratorName."""
    fixed = dict(convention.instance_models).get(instance)
    if fixed is not None:
        return GpuMatch(model=fixed, raw=accelerator, known=True, vram_gb=GPU_MODELS[fixed].vram_gb)
    if convention.name_source == "aws":
        aws = resolve_aws_instance(instance)
        if aws is not None:
            return aws
    if convention.name_source == "lambda":
        lam = resolve_lambda_instance(instance)
        if lam is not None and lam[0].known:
            return resolve_gpu(lam[0].model, provider=provider, instance_type=instance, vram_gb=memory_gb)
    name = _name_in_instance(instance, convention)
    if name:
        precise = resolve_gpu(name, provider=provider, instance_type=instance, vram_gb=memory_gb)
        if precise.known:
            return precise
    return resolve_gpu(accelerator, provider=provider, instance_type=instance, vram_gb=memory_gb)


def offer_from_row(
    line: int,
    rec: Record,
    *,
    convention: CatalogConvention,
    provider: str,
    observed_at: datetime,
    collector: LoadCollector,
) -> None:
    """One row -> its on-demand and spot quotes, or a skip / quarantine with the reason."""
    instance = (rec.get("InstanceType") or "").strip()
    accelerator = (rec.get("AcceleratorName") or "").strip()
    if not accelerator:
        collector.skip("no GPU (CPU-only or host-only row)")
        return
    if accelerator.lower().startswith("tpu"):
        collector.skip("TPU, not a GPU")
        return
    try:
        count_value = _number(rec.get("AcceleratorCount")) or 0.0
        price = _number(rec.get("Price"))
        spot = _number(rec.get(convention.spot_column)) if convention.spot_column else None
        vcpus, ram = _number(rec.get("vCPUs")), _number(rec.get("MemoryGiB"))
    except ValueError as exc:
        collector.quarantine(line, "unparseable row", str(exc), rec)
        return
    fraction = dict(convention.fractional_sizes).get(instance)
    if fraction is not None or count_value < 1 or not count_value.is_integer():
        share = fraction if fraction is not None else count_value
        collector.quarantine(line, "fractional GPU", f"{instance} holds {share:g} of a GPU", rec)
        return
    count = int(count_value)
    memory = memory_per_gpu_gb(rec.get("GpuInfo") or "", count, convention)
    match = resolve_row_gpu(accelerator, instance, convention=convention, provider=provider, memory_gb=memory)
    if not match.known:
        detail = f"{accelerator!r} ({instance}) is not in the GPU table"
        collector.quarantine(line, "unknown GPU model", detail, rec)
        return
    prices = [(False, price), (True, spot)]
    priced = [(is_spot, p) for is_spot, p in prices if p is not None and p > 0]
    if not priced:
        collector.quarantine(line, "no price", "neither an on-demand nor a spot price", rec)
        return
    seller = instance.split("_", 1)[0] if convention.seller_in_instance_type and "_" in instance else ""
    base: dict[str, Any] = dict(
        provider=provider,
        seller=seller.lower(),
        region=(rec.get("Region") or "").strip().lstrip(", ").strip(),
        zone=(rec.get("AvailabilityZone") or "").strip(),
        instance_type=instance,
        gpu_model=match.model,
        gpu_model_raw=accelerator,
        gpu_model_known=True,
        gpu_count=count,
        vram_gb=round(memory if memory is not None else GPU_MODELS[match.model].vram_gb, 2),
        vcpus=vcpus,
        ram_gb=ram,
        observed_at=observed_at,
    )
    collector.offer_row(line, rec, [{**base, "spot": s, "price_per_hour": p} for s, p in priced])


def _bundled(machine: str) -> tuple[str, int] | None:
    """(squeezed accelerator name, GPU count) of a GCP machine type that bundles GPUs."""
    for prefix, accelerator, by_vcpus in GCP_BUNDLED:
        if not machine.startswith(prefix):
            continue
        if by_vcpus:
            size = machine.removeprefix(prefix).split("-", 1)[0]
            count = dict(by_vcpus).get(int(size)) if size.isdigit() else None
        else:
            found = _GCP_GPU_COUNT.search(machine)
            count = int(found.group(1)) if found else None
        return (squeeze(accelerator), count) if count else None
    return None


def _add(a: str | None, b: str | None) -> str:
    x, y = _number(a), _number(b)
    return f"{x + y:.6f}" if x is not None and y is not None and x > 0 and y > 0 else ""


def _joined(host: Record, acc: Record, instance: str) -> Record:
    return {
        **acc,
        "InstanceType": instance,
        "vCPUs": host.get("vCPUs", ""),
        "MemoryGiB": host.get("MemoryGiB", ""),
        "Price": _add(host.get("Price"), acc.get("Price")),
        "SpotPrice": _add(host.get("SpotPrice"), acc.get("SpotPrice")),
    }


def compose_gcp_vms(
    records: Iterable[tuple[int, Record]], *, convention: CatalogConvention, collector: LoadCollector
) -> Iterator[tuple[int, Record]]:
    """Yield whole-VM rows: as given (combined layout) or host + accelerator summed (split layout)."""
    hosts: dict[tuple[str, str, str], tuple[int, Record]] = {}
    accelerators: dict[tuple[str, int, str, str], tuple[int, Record]] = {}
    for line, rec in records:
        instance, accelerator = (rec.get("InstanceType") or "").strip(), (rec.get("AcceleratorName") or "").strip()
        place = ((rec.get("Region") or "").strip(), (rec.get("AvailabilityZone") or "").strip())
        if instance and accelerator:
            yield line, rec
        elif instance:
            hosts[(instance, *place)] = (line, rec)
        elif accelerator:
            count = _number(rec.get("AcceleratorCount")) or 0.0
            accelerators[(squeeze(accelerator), int(count), *place)] = (line, rec)
        else:
            collector.skip("empty row")
    used: set[tuple[str, int, str, str]] = set()
    for (instance, region, zone), (line, host) in hosts.items():
        bundle = _bundled(instance)
        if bundle is None:
            collector.skip("no GPU (CPU-only or host-only row)")
            continue
        key = (*bundle, region, zone)
        if key not in accelerators:
            detail = f"{instance} in {zone or region}: no {bundle[1]}x {bundle[0]} accelerator row to add"
            collector.quarantine(line, "no accelerator row", detail, host)
            continue
        used.add(key)
        yield line, _joined(host, accelerators[key][1], instance)
    for key, (line, acc) in accelerators.items():
        name, count, region, zone = key
        if key in used:
            collector.skip("accelerator price summed into its VM")
        elif name.startswith("tpu"):
            collector.skip("TPU, not a GPU")
        elif name in GCP_ATTACHABLE:
            attach = hosts.get((convention.gcp_attach_host, region, zone))
            if attach is None:
                detail = f"{count}x {acc.get('AcceleratorName')} in {zone or region}: no {convention.gcp_attach_host} row"
                collector.quarantine(line, "no host row", detail, acc)
                continue
            instance = f"{convention.gcp_attach_host}+{count}x{acc.get('AcceleratorName', '')}"
            yield line, _joined(attach[1], acc, instance)
        else:
            collector.skip("accelerator price of a family without that machine type here")
