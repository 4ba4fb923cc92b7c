"""RunPod: GPU types with secure/community on-demand and spot prices, and stock status.

Follows the RunPod GraphQL API (https://docs.runpod.io/sdks/graphql/manage-pods, "List GPU types";
schema at https://graphql-spec.runpod.io): ``POST https://api.runpod.io/graphql?api_key=<API key>``
(the documented way to authenticate; the key is redacted from every error and log line) with the
``gpuTypes`` query below. Fields: id ("NVIDIA GeForce
RTX 4090"), displayName, memoryInGb, secureCloud, communityCloud, securePrice, communityPrice,
secureSpotPrice, communitySpotPrice (USD per GPU-hour), and ``lowestPrice(input: {gpuCount: 1})``
with minimumBidPrice, uninterruptablePrice and stockStatus ("High" | "Medium" | "Low" | null). The
answer is not paged. GraphQL reports failures as ``{"errors": [{"message": ...}]}``, sometimes with
HTTP 200; an authentication message there is a ProviderAuthError.

Each GPU type yields up to four one-GPU quotes: (secure | community) x (on-demand | spot), as
instance types "<id> [secure]" / "<id> [community]". A price of 0/null means "not offered".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ingestion.errors import MalformedResponse, ProviderAuthError
from ingestion.gpus import resolve_gpu
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient
from ingestion.schemas import Capacity, PriceQuote

DEFAULT_BASE_URL = "https://api.runpod.io"

GPU_TYPES_QUERY = """
query GpuTypes {
  gpuTypes {
    id
    displayName
    memoryInGb
    secureCloud
    communityCloud
    securePrice
    communityPrice
    secureSpotPrice
    communitySpotPrice
    lowestPrice(input: {gpuCount: 1}) {
      minimumBidPrice
      uninterruptablePrice
      stockStatus
    }
  }
}
""".strip()

_STOCK: dict[str | None, Capacity] = {"High": "available", "Medium": "available", "Low": "low", None: "unavailable"}


class RunPodConfig(ProviderConfig):
    """RunPod needs an API key (console -> Settings -> API keys)."""


class _LowestPrice(BaseModel):
    model_config = ConfigDict(extra="ignore")
    minimumBidPrice: float | None = None
    uninterruptablePrice: float | None = None
    stockStatus: str | None = None


class _GpuType(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    displayName: str = ""
    memoryInGb: float | None = None
    secureCloud: bool | None = None
    communityCloud: bool | None = None
    securePrice: float | None = None
    communityPrice: float | None = None
    secureSpotPrice: float | None = None
    communitySpotPrice: float | None = None
    lowestPrice: _LowestPrice | None = None


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")
    gpuTypes: list[_GpuType]


class _GraphQLError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: _Data | None = None
    errors: list[_GraphQLError] | None = None


class RunPodProvider:
    """RunPod gpuTypes -> quotes (see the module docstring)."""

    key: ClassVar[str] = "runpod"
    config_class: ClassVar[type[ProviderConfig]] = RunPodConfig

    def __init__(self, *, config: RunPodConfig) -> None:
        self.config = config
        self._api_key = config.require_api_key(self.key)

    def fetch(self) -> list[PriceQuote]:
        with HttpClient(
            provider=self.key,
            config=self.config,
            default_base_url=DEFAULT_BASE_URL,
        ) as http:
            body = {"operationName": "GpuTypes", "query": GPU_TYPES_QUERY, "variables": {}}
            data = http.request_json("POST", "/graphql", params={"api_key": self._api_key}, json_body=body)
            response = http.parse(_Response, data, url="/graphql")
        if response.errors:
            message = "; ".join(e.message for e in response.errors)
            lowered = message.lower()
            if any(word in lowered for word in ("unauthori", "authenticat", "api key", "forbidden")):
                raise ProviderAuthError(f"runpod: {message}", provider=self.key)
            if response.data is None:
                raise MalformedResponse(f"runpod: GraphQL errors: {message}", provider=self.key)
        if response.data is None:
            raise MalformedResponse("runpod: GraphQL answer without data", provider=self.key)
        now = self.config.clock()
        quotes: list[PriceQuote] = []
        for gpu in response.data.gpuTypes:
            quotes.extend(self._quotes(gpu, now))
        return quotes

    def _quotes(self, gpu: _GpuType, now: datetime) -> list[PriceQuote]:
        match = resolve_gpu(gpu.id, provider=self.key, vram_gb=gpu.memoryInGb)
        stock = gpu.lowestPrice.stockStatus if gpu.lowestPrice else None
        capacity = _STOCK.get(stock, "unknown")
        quotes: list[PriceQuote] = []
        offers = (
            ("secure", False, gpu.securePrice, gpu.secureCloud),
            ("secure", True, gpu.secureSpotPrice, gpu.secureCloud),
            ("community", False, gpu.communityPrice, gpu.communityCloud),
            ("community", True, gpu.communitySpotPrice, gpu.communityCloud),
        )
        for cloud, spot, price, offered in offers:
            if not price or price <= 0 or offered is False:
                continue
            data: dict[str, Any] = dict(
                region="",
                instance_type=f"{gpu.id} [{cloud}]",
                gpu_model=match.model,
                gpu_model_raw=gpu.id,
                gpu_model_known=match.known,
                gpu_count=1,
                vram_gb=match.vram_gb if match.known else (gpu.memoryInGb or 0.0),
                spot=spot,
                price_per_hour=price,
                capacity=capacity,
                observed_at=now,
            )
            quotes.append(make_quote(self.key, data))
        return quotes
