"""Lambda Cloud: on-demand prices and the regions with capacity right now.

Follows the Lambda Cloud API v1 (https://docs.lambda.ai/api/cloud, "List available instance
types"): ``GET https://cloud.lambda.ai/api/v1/instance-types`` with ``Authorization: Bearer
<API key>``. The answer is not paged: ``{"data": {<name>: {"instance_type": {name, description,
gpu_description, price_cents_per_hour, specs: {vcpus, memory_gib, storage_gib, gpus}},
"regions_with_capacity_available": [{name, description}]}}}``. Errors come as
``{"error": {"code", "message", "suggestion"}}`` with 401/403 for a bad key.

Each instance type becomes one quote per region with capacity (capacity="available"). A type with
no capacity anywhere still yields one quote with region "" and capacity="unavailable", so its list
price stays in the time series. Lambda sells no spot instances.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ingestion.gpus import resolve_gpu, resolve_lambda_instance
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient
from ingestion.schemas import PriceQuote

DEFAULT_BASE_URL = "https://cloud.lambda.ai/api/v1"


class LambdaConfig(ProviderConfig):
    """Lambda needs an API key (Cloud dashboard -> API keys)."""


class _Specs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    vcpus: int
    memory_gib: float
    storage_gib: float | None = None
    gpus: int


class _InstanceType(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    description: str = ""
    gpu_description: str = ""
    price_cents_per_hour: int
    specs: _Specs


class _Region(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    description: str = ""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    instance_type: _InstanceType
    regions_with_capacity_available: list[_Region]


class _InstanceTypesResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: dict[str, _Entry]


class LambdaProvider:
    """Lambda Cloud instance types -> quotes (see the module docstring)."""

    key: ClassVar[str] = "lambda"
    config_class: ClassVar[type[ProviderConfig]] = LambdaConfig

    def __init__(self, *, config: LambdaConfig) -> None:
        self.config = config
        self._api_key = config.require_api_key(self.key)

    def fetch(self) -> list[PriceQuote]:
        with HttpClient(
            provider=self.key,
            config=self.config,
            default_base_url=DEFAULT_BASE_URL,
            headers={"Authorization": f"Bearer {self._api_key}"},
        ) as http:
            response = http.get_model("/instance-types", _InstanceTypesResponse)
        now = self.config.clock()
        quotes: list[PriceQuote] = []
        for entry in response.data.values():
            quotes.extend(self._quotes(entry, now))
        return quotes

    def _quotes(self, entry: _Entry, now: datetime) -> list[PriceQuote]:
        itype = entry.instance_type
        if itype.specs.gpus < 1:
            return []
        from_name = resolve_lambda_instance(itype.name)
        match = from_name[0] if from_name and from_name[0].known else resolve_gpu(
            itype.gpu_description or itype.description, provider=self.key, instance_type=itype.name
        )
        base: dict[str, Any] = dict(
            instance_type=itype.name,
            gpu_model=match.model,
            gpu_model_raw=itype.gpu_description or itype.name,
            gpu_model_known=match.known,
            gpu_count=itype.specs.gpus,
            vram_gb=match.vram_gb,
            vcpus=float(itype.specs.vcpus),
            ram_gb=itype.specs.memory_gib,
            spot=False,
            price_per_hour=itype.price_cents_per_hour / 100.0,
            observed_at=now,
        )
        regions = entry.regions_with_capacity_available
        if not regions:
            return [make_quote(self.key, {**base, "region": "", "capacity": "unavailable"})]
        return [
            make_quote(self.key, {**base, "region": region.name, "capacity": "available"})
            for region in regions
        ]
