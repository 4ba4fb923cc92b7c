"""Azure: pay-as-you-go and Spot prices of GPU VM sizes from the public Retail Prices API.

Follows the Azure Retail Prices REST API, api-version 2023-01-01-preview
(https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices):
``GET https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&$filter=...``.
Unauthenticated. OData ``$filter`` on serviceName, priceType, armSkuName, armRegionName (values are
case-sensitive in this version). Paged: each answer is ``{"BillingCurrency", "CustomerEntityId",
"CustomerEntityType", "Items": [...], "NextPageLink": <absolute URL or null>, "Count"}``; we follow
NextPageLink until it is null. Items used: armSkuName, armRegionName, skuName ("NC24ads A100 v4
Spot" / "... Low Priority"), productName ("... Windows" for Windows meters), type
("Consumption"), unitOfMeasure ("1 Hour"), retailPrice, currencyCode, effectiveStartDate.

One query per GPU size (``armSkuName eq '<size>'``, optionally one region). Linux pay-as-you-go
meters become on-demand quotes, "Spot" meters spot quotes; Low Priority (retired batch pricing)
and Windows meters are skipped. GPU model/count/vCPUs/RAM come from `azure_skus`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ingestion.gpus import GPU_MODELS
from ingestion.providers.azure_skus import AZURE_GPU_SIZES
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient
from ingestion.schemas import PriceQuote

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://prices.azure.com"
API_VERSION = "2023-01-01-preview"
MAX_PAGES = 200


class AzureConfig(ProviderConfig):
    """Public API: no credentials. Narrow the sizes or regions to cut the number of requests."""

    sizes: tuple[str, ...] = Field(default=tuple(AZURE_GPU_SIZES), description="armSkuName values.")
    regions: tuple[str, ...] = Field(default=(), description="armRegionName values; empty = all.")


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    currencyCode: str = "USD"
    retailPrice: float
    armRegionName: str
    armSkuName: str
    skuName: str = ""
    productName: str = ""
    type: str = "Consumption"
    unitOfMeasure: str = "1 Hour"
    effectiveStartDate: str = ""


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Items: list[_Item]
    NextPageLink: str | None = None


class AzureProvider:
    """Azure Retail Prices -> quotes (see the module docstring)."""

    key: ClassVar[str] = "azure"
    config_class: ClassVar[type[ProviderConfig]] = AzureConfig

    def __init__(self, *, config: AzureConfig) -> None:
        self.config = config

    def filters(self) -> list[str]:
        """One OData filter per (size, region) asked for."""
        regions: tuple[str | None, ...] = self.config.regions or (None,)
        out = []
        for size in self.config.sizes:
            for region in regions:
                clause = f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and armSkuName eq '{size}'"
                if region:
                    clause += f" and armRegionName eq '{region}'"
                out.append(clause)
        return out

    def fetch(self) -> list[PriceQuote]:
        items: list[_Item] = []
        with HttpClient(provider=self.key, config=self.config, default_base_url=DEFAULT_BASE_URL) as http:
            for odata in self.filters():
                items.extend(self._pages(http, odata))
        return self._normalize(items, self.config.clock())

    def _pages(self, http: HttpClient, odata: str) -> list[_Item]:
        page = http.get_model("/api/retail/prices", _Page, params={"api-version": API_VERSION, "$filter": odata})
        items = list(page.Items)
        for _ in range(MAX_PAGES):
            if not page.NextPageLink:
                return items
            page = http.get_model(page.NextPageLink, _Page)
            items.extend(page.Items)
        logger.warning("azure: stopped after %d pages for %s", MAX_PAGES, odata)
        return items

    def _normalize(self, items: list[_Item], now: datetime) -> list[PriceQuote]:
        latest: dict[tuple[str, str, bool], _Item] = {}
        for item in items:
            size = AZURE_GPU_SIZES.get(item.armSkuName)
            if size is None or item.type != "Consumption" or item.currencyCode != "USD":
                continue
            if "windows" in item.productName.lower() or "low priority" in item.skuName.lower():
                continue
            if item.unitOfMeasure != "1 Hour" or item.retailPrice <= 0:
                continue
            spot = item.skuName.lower().endswith("spot")
            key = (item.armRegionName, item.armSkuName, spot)
            if key not in latest or item.effectiveStartDate > latest[key].effectiveStartDate:
                latest[key] = item
        quotes = []
        for (region, sku, spot), item in sorted(latest.items()):
            size = AZURE_GPU_SIZES[sku]
            data: dict[str, Any] = dict(
                region=region,
                instance_type=sku,
                gpu_model=size.gpu_name,
                gpu_model_raw=item.skuName or sku,
                gpu_model_known=True,
                gpu_count=size.gpu_count,
                vram_gb=GPU_MODELS[size.gpu_name].vram_gb,
                vcpus=float(size.vcpus),
                ram_gb=float(size.ram_gb),
                spot=spot,
                price_per_hour=item.retailPrice,
                observed_at=now,
            )
            quotes.append(make_quote(self.key, data))
        return quotes
