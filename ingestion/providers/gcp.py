"""GCP: per-instance prices of GPU machine types from the Cloud Billing Catalog API.

Follows the Cloud Billing Catalog API v1 (https://cloud.google.com/billing/v1/how-tos/catalog-api,
REST reference ``services.skus.list``): ``GET https://cloudbilling.googleapis.com/v1/services/
6F81-5844-456A/skus?key=<API key>&currencyCode=USD&pageSize=5000[&pageToken=...]`` (6F81-5844-456A
is Compute Engine). Paged: follow ``nextPageToken`` until it is empty or absent. Each SKU: skuId,
description, category {resourceFamily, resourceGroup, usageType: "OnDemand" | "Preemptible" |
"Commit1Yr" ...}, serviceRegions [...], pricingInfo [{pricingExpression: {usageUnit,
tieredRates: [{startUsageAmount, unitPrice: {currencyCode, units, nanos}}]}}]. Errors use the
Google JSON error shape {"error": {"code", "message", "status"}} (400 INVALID_ARGUMENT for a bad
key, 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED).

The catalog prices parts, not machines: an a2-highgpu-1g costs 1 x "Nvidia Tesla A100 GPU" +
12 x "A2 Instance Core" + 85 GiB x "A2 Instance Ram" in its region; an N1 VM with attached GPUs
costs its "N1 Predefined Instance Core/Ram" plus the GPUs. `GCP_MACHINES` lists the
accelerator-optimized machine types with whole GPUs; a machine type is priced in a region only when
all three parts are, for on-demand ("OnDemand") and spot ("Preemptible", "Spot Preemptible ...")
separately.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ingestion.errors import ProviderAuthError, ProviderRequestRejected
from ingestion.gpus import resolve_gpu
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient
from ingestion.schemas import PriceQuote

DEFAULT_BASE_URL = "https://cloudbilling.googleapis.com/v1"
COMPUTE_ENGINE_SERVICE = "6F81-5844-456A"
MAX_PAGES = 500


class GcpMachine(NamedTuple):
    family: str  # key of the "<Family> Instance Core/Ram" SKUs, squeezed: "a2", "a3", "a3mega", "g2"
    gpu_sku: str  # squeezed GPU SKU name: "a100", "a10080gb", "h10080gb", "l4", ...
    gpus: int
    vcpus: int
    ram_gb: float


GCP_MACHINES: dict[str, GcpMachine] = {
    "a2-highgpu-1g": GcpMachine("a2", "a100", 1, 12, 85),
    "a2-highgpu-2g": GcpMachine("a2", "a100", 2, 24, 170),
    "a2-highgpu-4g": GcpMachine("a2", "a100", 4, 48, 340),
    "a2-highgpu-8g": GcpMachine("a2", "a100", 8, 96, 680),
    "a2-megagpu-16g": GcpMachine("a2", "a100", 16, 96, 1360),
    "a2-ultragpu-1g": GcpMachine("a2", "a10080gb", 1, 12, 170),
    "a2-ultragpu-2g": GcpMachine("a2", "a10080gb", 2, 24, 340),
    "a2-ultragpu-4g": GcpMachine("a2", "a10080gb", 4, 48, 680),
    "a2-ultragpu-8g": GcpMachine("a2", "a10080gb", 8, 96, 1360),
    "a3-highgpu-1g": GcpMachine("a3", "h10080gb", 1, 26, 234),
    "a3-highgpu-2g": GcpMachine("a3", "h10080gb", 2, 52, 468),
    "a3-highgpu-4g": GcpMachine("a3", "h10080gb", 4, 104, 936),
    "a3-highgpu-8g": GcpMachine("a3", "h10080gb", 8, 208, 1872),
    "a3-megagpu-8g": GcpMachine("a3mega", "h10080gbmega", 8, 208, 1872),
    "g2-standard-4": GcpMachine("g2", "l4", 1, 4, 16),
    "g2-standard-8": GcpMachine("g2", "l4", 1, 8, 32),
    "g2-standard-12": GcpMachine("g2", "l4", 1, 12, 48),
    "g2-standard-16": GcpMachine("g2", "l4", 1, 16, 64),
    "g2-standard-24": GcpMachine("g2", "l4", 2, 24, 96),
    "g2-standard-32": GcpMachine("g2", "l4", 1, 32, 128),
    "g2-standard-48": GcpMachine("g2", "l4", 4, 48, 192),
    "g2-standard-96": GcpMachine("g2", "l4", 8, 96, 384),
    "g4-standard-48": GcpMachine("g4", "rtxpro6000", 1, 48, 180),
    "g4-standard-96": GcpMachine("g4", "rtxpro6000", 2, 96, 360),
    "g4-standard-192": GcpMachine("g4", "rtxpro6000", 4, 192, 720),
    "g4-standard-384": GcpMachine("g4", "rtxpro6000", 8, 384, 1440),
    # N1 with attached GPUs: the common shapes, named "<machine type>+<count>x<accelerator>".
    "n1-standard-4+1xnvidia-tesla-t4": GcpMachine("n1predefined", "t4", 1, 4, 15),
    "n1-standard-8+1xnvidia-tesla-t4": GcpMachine("n1predefined", "t4", 1, 8, 30),
    "n1-standard-16+4xnvidia-tesla-t4": GcpMachine("n1predefined", "t4", 4, 16, 60),
    "n1-standard-8+1xnvidia-tesla-v100": GcpMachine("n1predefined", "v100", 1, 8, 30),
    "n1-standard-32+4xnvidia-tesla-v100": GcpMachine("n1predefined", "v100", 4, 32, 120),
    "n1-standard-64+8xnvidia-tesla-v100": GcpMachine("n1predefined", "v100", 8, 64, 240),
}

_GPU_SKU = re.compile(r"^(?:spot preemptible )?nvidia (?P<name>.+?) gpu running in ", re.IGNORECASE)
_PART_SKU = re.compile(r"^(?:spot preemptible )?(?P<family>[a-z0-9 ]+?) instance (?P<part>core|ram) running in ",
                       re.IGNORECASE)


def _squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("tesla", ""))


class GcpConfig(ProviderConfig):
    """The Catalog API needs an API key of a project with the Cloud Billing API enabled."""

    regions: tuple[str, ...] = Field(default=(), description="Only these regions; empty = all.")
    page_size: int = Field(default=5000, ge=1, le=5000)


class _Money(BaseModel):
    model_config = ConfigDict(extra="ignore")
    currencyCode: str = "USD"
    units: str | int = "0"
    nanos: int = 0

    @property
    def value(self) -> float:
        return int(self.units or 0) + self.nanos / 1e9


class _Rate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    startUsageAmount: float = 0
    unitPrice: _Money


class _Expression(BaseModel):
    model_config = ConfigDict(extra="ignore")
    usageUnit: str = ""
    tieredRates: list[_Rate]


class _PricingInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pricingExpression: _Expression


class _Category(BaseModel):
    model_config = ConfigDict(extra="ignore")
    resourceFamily: str = ""
    resourceGroup: str = ""
    usageType: str = ""


class _Sku(BaseModel):
    model_config = ConfigDict(extra="ignore")
    skuId: str
    description: str
    category: _Category
    serviceRegions: list[str] = []
    pricingInfo: list[_PricingInfo]

    def unit_price(self) -> float | None:
        if not self.pricingInfo:
            return None
        rates = self.pricingInfo[0].pricingExpression.tieredRates
        prices = [r.unitPrice.value for r in sorted(rates, key=lambda r: r.startUsageAmount)]
        positive = [p for p in prices if p > 0]
        return positive[0] if positive else None


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    skus: list[_Sku]
    nextPageToken: str | None = None


# (region, spot) -> name -> USD per unit
_PriceBook = dict[tuple[str, bool], dict[str, float]]


class GcpProvider:
    """Cloud Billing Catalog SKUs -> per-machine-type quotes (see the module docstring)."""

    key: ClassVar[str] = "gcp"
    config_class: ClassVar[type[ProviderConfig]] = GcpConfig

    def __init__(self, *, config: GcpConfig) -> None:
        self.config = config
        self._api_key = config.require_api_key(self.key)

    def fetch(self) -> list[PriceQuote]:
        skus: list[_Sku] = []
        with HttpClient(provider=self.key, config=self.config, default_base_url=DEFAULT_BASE_URL) as http:
            token = ""
            for _ in range(MAX_PAGES):
                params: dict[str, str | int] = {
                    "key": self._api_key,
                    "currencyCode": "USD",
                    "pageSize": self.config.page_size,
                }
                if token:
                    params["pageToken"] = token
                page = self._page(http, params)
                skus.extend(page.skus)
                token = page.nextPageToken or ""
                if not token:
                    break
        return self.price_machines(skus, self.config.clock())

    def _page(self, http: HttpClient, params: dict[str, str | int]) -> _Page:
        try:
            return http.get_model(f"/services/{COMPUTE_ENGINE_SERVICE}/skus", _Page, params=params)
        except ProviderRequestRejected as exc:
            # Google answers a bad API key with 400 INVALID_ARGUMENT "API key not valid".
            if exc.status_code == 400 and "api key" in str(exc).lower():
                raise ProviderAuthError(str(exc), provider=self.key, status_code=400, url=exc.url) from exc
            raise

    def price_machines(self, skus: list[_Sku], now: datetime) -> list[PriceQuote]:
        gpus, cores, rams = self._price_books(skus)
        wanted = set(self.config.regions)
        quotes: list[PriceQuote] = []
        for (region, spot), gpu_prices in sorted(gpus.items()):
            if wanted and region not in wanted:
                continue
            core_prices = cores.get((region, spot), {})
            ram_prices = rams.get((region, spot), {})
            for name, machine in GCP_MACHINES.items():
                parts = (gpu_prices.get(machine.gpu_sku), core_prices.get(machine.family),
                         ram_prices.get(machine.family))
                if any(p is None for p in parts):
                    continue
                gpu_p, core_p, ram_p = (float(p or 0.0) for p in parts)
                price = machine.gpus * gpu_p + machine.vcpus * core_p + machine.ram_gb * ram_p
                match = resolve_gpu(machine.gpu_sku, provider=self.key, instance_type=name)
                data: dict[str, Any] = dict(
                    region=region,
                    instance_type=name,
                    gpu_model=match.model,
                    gpu_model_raw=machine.gpu_sku,
                    gpu_model_known=match.known,
                    gpu_count=machine.gpus,
                    vram_gb=match.vram_gb,
                    vcpus=float(machine.vcpus),
                    ram_gb=float(machine.ram_gb),
                    spot=spot,
                    price_per_hour=round(price, 6),
                    observed_at=now,
                )
                quotes.append(make_quote(self.key, data))
        return quotes

    @staticmethod
    def _price_books(skus: list[_Sku]) -> tuple[_PriceBook, _PriceBook, _PriceBook]:
        gpus: _PriceBook = defaultdict(dict)
        cores: _PriceBook = defaultdict(dict)
        rams: _PriceBook = defaultdict(dict)
        for sku in skus:
            usage = sku.category.usageType
            if usage not in ("OnDemand", "Preemptible"):
                continue
            price = sku.unit_price()
            if price is None:
                continue
            spot = usage == "Preemptible"
            gpu = _GPU_SKU.match(sku.description)
            part = _PART_SKU.match(sku.description)
            for region in sku.serviceRegions:
                if gpu is not None and sku.category.resourceGroup == "GPU":
                    gpus[(region, spot)][_squeeze(gpu.group("name"))] = price
                elif part is not None:
                    book = cores if part.group("part").lower() == "core" else rams
                    book[(region, spot)][_squeeze(part.group("family"))] = price
        return gpus, cores, rams
