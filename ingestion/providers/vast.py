"""Vast.ai marketplace: every machine offer with its price, reliability, location and DLPerf.

Follows the Vast.ai REST API v0 "Search offers" (https://docs.vast.ai/api, the endpoint the
official ``vastai search offers`` CLI calls): ``POST https://console.vast.ai/api/v0/bundles/`` with
``Authorization: Bearer <API key>`` and a JSON query body of field filters ({"rentable": {"eq":
true}, ...}) plus ``limit`` and ``order``. The answer is one JSON document ``{"offers": [...]}``;
the API has no page token, so ``limit`` bounds the result (config ``limit``).

Offer fields used: id, machine_id, gpu_name, num_gpus, gpu_ram (MB per GPU), cpu_cores_effective,
cpu_ram (MB), dph_total (USD/hour for the whole offer), min_bid (USD/hour, the interruptible
floor), reliability2 (0..1; older answers carry ``reliability``), geolocation ("Oregon, US"),
dlperf, rentable, rented. Each offer yields an on-demand quote at dph_total and, when min_bid is
positive, a spot (interruptible) quote at min_bid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ingestion.gpus import resolve_gpu
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient
from ingestion.schemas import PriceQuote

DEFAULT_BASE_URL = "https://console.vast.ai/api/v0"


class VastConfig(ProviderConfig):
    """Vast needs an API key (console -> Account -> API keys)."""

    limit: int = Field(default=3000, ge=1, le=10000, description="Most offers one search returns.")
    verified_only: bool = Field(default=False, description="Only hosts Vast has verified.")


class _Offer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    machine_id: int | None = None
    gpu_name: str
    num_gpus: int
    gpu_ram: float | None = None
    cpu_cores_effective: float | None = None
    cpu_ram: float | None = None
    dph_total: float
    min_bid: float | None = None
    reliability2: float | None = None
    reliability: float | None = None
    geolocation: str | None = None
    dlperf: float | None = None
    rentable: bool = True
    rented: bool = False


class _SearchResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    offers: list[_Offer]


class VastProvider:
    """Vast.ai offer search -> quotes (see the module docstring)."""

    key: ClassVar[str] = "vast"
    config_class: ClassVar[type[ProviderConfig]] = VastConfig

    def __init__(self, *, config: VastConfig) -> None:
        self.config = config
        self._api_key = config.require_api_key(self.key)

    def query(self) -> dict[str, Any]:
        """The documented search body: rentable GPU offers, cheapest first."""
        body: dict[str, Any] = {
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "num_gpus": {"gte": 1},
            "order": [["dph_total", "asc"]],
            "type": "on-demand",
            "limit": self.config.limit,
        }
        if self.config.verified_only:
            body["verified"] = {"eq": True}
        return body

    def fetch(self) -> list[PriceQuote]:
        with HttpClient(
            provider=self.key,
            config=self.config,
            default_base_url=DEFAULT_BASE_URL,
            headers={"Authorization": f"Bearer {self._api_key}"},
        ) as http:
            data = http.request_json("POST", "/bundles/", json_body=self.query())
            response = http.parse(_SearchResponse, data, url="/bundles/")
        now = self.config.clock()
        quotes: list[PriceQuote] = []
        for offer in response.offers:
            quotes.extend(self._quotes(offer, now))
        return quotes

    def _quotes(self, offer: _Offer, now: datetime) -> list[PriceQuote]:
        vram = offer.gpu_ram / 1024 if offer.gpu_ram else None
        match = resolve_gpu(offer.gpu_name, provider=self.key, vram_gb=vram)
        available = offer.rentable and not offer.rented
        reliability = offer.reliability2 if offer.reliability2 is not None else offer.reliability
        base: dict[str, Any] = dict(
            region=(offer.geolocation or "").strip(),
            zone=f"machine-{offer.machine_id}" if offer.machine_id is not None else "",
            instance_type=f"{offer.num_gpus}x {offer.gpu_name} #{offer.id}",
            gpu_model=match.model,
            gpu_model_raw=offer.gpu_name,
            gpu_model_known=match.known,
            gpu_count=offer.num_gpus,
            vram_gb=match.vram_gb if match.known else round(vram or 0.0, 1),
            vcpus=offer.cpu_cores_effective,
            ram_gb=round(offer.cpu_ram / 1024, 1) if offer.cpu_ram is not None else None,
            capacity="available" if available else "unavailable",
            available_instances=1 if available else 0,
            reliability=min(1.0, max(0.0, reliability)) if reliability is not None else None,
            perf_score=offer.dlperf if offer.dlperf is not None and offer.dlperf >= 0 else None,
            observed_at=now,
        )
        quotes = [make_quote(self.key, {**base, "spot": False, "price_per_hour": offer.dph_total})]
        if offer.min_bid is not None and offer.min_bid > 0:
            quotes.append(make_quote(self.key, {**base, "spot": True, "price_per_hour": offer.min_bid}))
        return quotes
