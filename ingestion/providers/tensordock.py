"""TensorDock marketplace: host nodes with per-resource prices (GPU, vCPU, RAM, storage).

Follows the TensorDock Marketplace API v0 (Postman documentation
https://documenter.getpostman.com/view/20973002/2s8YzMYRDc, "List Hostnodes"):
``GET https://marketplace.tensordock.com/api/v0/client/deploy/hostnodes``. Listing host nodes is
public; the api_key/api_token pair is only needed to deploy, so this client needs no credentials.
The answer is one document (no paging): ``{"success": true, "hostnodes": {<id>: {"location":
{country, region, city, ...}, "specs": {"gpu": {<model key>: {amount, price, vram}}, "cpu":
{amount, price}, "ram": {amount, price}, "storage": {amount, price}}}}}``. Prices are USD per hour
per unit (per GPU, per vCPU, per GB of RAM, per GB of storage); ``amount`` is what is free now.

A marketplace VM is priced from its parts, so each (host node, GPU model) yields quotes for one GPU
and for all free GPUs, with ``vcpus_per_gpu`` vCPUs, ``ram_gb_per_gpu`` GB RAM per GPU (capped by
what the node has free) and ``storage_gb`` of disk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ingestion.errors import MalformedResponse
from ingestion.gpus import resolve_gpu
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient
from ingestion.schemas import PriceQuote

DEFAULT_BASE_URL = "https://marketplace.tensordock.com/api/v0"


class TensorDockConfig(ProviderConfig):
    """No credentials needed to list host nodes; the sizing of the priced VM is configurable."""

    vcpus_per_gpu: int = Field(default=8, ge=1)
    ram_gb_per_gpu: int = Field(default=32, ge=1)
    storage_gb: int = Field(default=100, ge=20)


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore")
    amount: float
    price: float


class _Gpu(BaseModel):
    model_config = ConfigDict(extra="ignore")
    amount: int
    price: float
    vram: float | None = None


class _Specs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    gpu: dict[str, _Gpu]
    cpu: _Resource
    ram: _Resource
    storage: _Resource


class _Location(BaseModel):
    model_config = ConfigDict(extra="ignore")
    country: str = ""
    region: str = ""
    city: str = ""


class _Hostnode(BaseModel):
    model_config = ConfigDict(extra="ignore")
    location: _Location
    specs: _Specs


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")
    success: bool = True
    hostnodes: dict[str, _Hostnode]


class TensorDockProvider:
    """TensorDock host nodes -> quotes (see the module docstring)."""

    key: ClassVar[str] = "tensordock"
    config_class: ClassVar[type[ProviderConfig]] = TensorDockConfig

    def __init__(self, *, config: TensorDockConfig) -> None:
        self.config = config

    def fetch(self) -> list[PriceQuote]:
        with HttpClient(provider=self.key, config=self.config, default_base_url=DEFAULT_BASE_URL) as http:
            response = http.get_model("/client/deploy/hostnodes", _Response)
        if not response.success:
            raise MalformedResponse("tensordock: answer says success=false", provider=self.key)
        now = self.config.clock()
        quotes: list[PriceQuote] = []
        for node_id, node in response.hostnodes.items():
            for gpu_key, gpu in node.specs.gpu.items():
                quotes.extend(self._quotes(node_id, node, gpu_key, gpu, now))
        return quotes

    def _quotes(
        self, node_id: str, node: _Hostnode, gpu_key: str, gpu: _Gpu, now: datetime
    ) -> list[PriceQuote]:
        if gpu.amount < 1:
            return []
        cfg = self.config
        specs = node.specs
        match = resolve_gpu(gpu_key, provider=self.key, vram_gb=gpu.vram)
        loc = node.location
        region = "-".join(p for p in (loc.country, loc.region, loc.city) if p)
        quotes: list[PriceQuote] = []
        for count in sorted({1, gpu.amount}):
            vcpus = min(specs.cpu.amount, cfg.vcpus_per_gpu * count)
            ram = min(specs.ram.amount, cfg.ram_gb_per_gpu * count)
            price = (
                count * gpu.price
                + vcpus * specs.cpu.price
                + ram * specs.ram.price
                + cfg.storage_gb * specs.storage.price
            )
            data: dict[str, Any] = dict(
                region=region,
                zone=node_id,
                instance_type=f"{count}x {gpu_key} ({int(vcpus)} vCPU, {int(ram)} GB)",
                gpu_model=match.model,
                gpu_model_raw=gpu_key,
                gpu_model_known=match.known,
                gpu_count=count,
                vram_gb=match.vram_gb if match.known else (gpu.vram or 0.0),
                vcpus=vcpus,
                ram_gb=ram,
                spot=False,
                price_per_hour=round(price, 6),
                capacity="available",
                available_instances=gpu.amount // count,
                observed_at=now,
            )
            quotes.append(make_quote(self.key, data))
        return quotes
