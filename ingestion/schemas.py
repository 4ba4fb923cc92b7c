"""The normalized price quote every provider client and catalog loader produces.

A quote is one observation of one offer (provider x region/zone x instance type x spot/on-demand)
at one instant. Storage turns a stream of quotes into price ticks and the "current offers" table.
Fields may be added (with defaults); existing names keep their meaning.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Capacity = Literal["available", "low", "unavailable", "unknown"]


class PriceQuote(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]
    region: str = Field(default="", max_length=120)
    zone: str = Field(default="", max_length=120)
    instance_type: Annotated[str, Field(min_length=1, max_length=200)]
    gpu_model: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="Canonical GPU model name ('H100 SXM', 'A100 80GB SXM', 'RTX 4090', ...)."
    )
    gpu_model_raw: str = Field(default="", max_length=200, description="The provider's own name.")
    gpu_model_known: bool = Field(default=True, description="False when the raw name had no mapping.")
    gpu_count: Annotated[int, Field(ge=1, le=64)]
    vram_gb: Annotated[float, Field(ge=0)] = Field(default=0.0, description="Per GPU.")
    vcpus: Annotated[float, Field(ge=0)] | None = None
    ram_gb: Annotated[float, Field(ge=0)] | None = None
    spot: bool = False
    price_per_hour: Annotated[float, Field(ge=0)] = Field(description="USD per instance-hour.")
    capacity: Capacity = "unknown"
    available_instances: Annotated[int, Field(ge=0)] | None = None
    reliability: Annotated[float, Field(ge=0, le=1)] | None = None
    observed_at: datetime
    perf_score: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description="Provider-reported performance score (Vast.ai DLPerf); comparable within a provider only.",
    )
    seller: str = Field(
        default="",
        max_length=60,
        pattern=r"^[a-z0-9_.-]*$",
        description="Who really runs the machine when the provider is a marketplace reselling others "
        "(provider 'shadeform', seller 'lambdalabs'); empty when the provider is the seller.",
    )

    @property
    def price_per_gpu_hour(self) -> float:
        return self.price_per_hour / self.gpu_count

    @property
    def offer_key(self) -> str:
        """Stable identity of the offer this quote prices (independent of price and time)."""
        raw = "|".join(
            [self.provider, self.region, self.zone, self.instance_type, "spot" if self.spot else "od"]
        )
        return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()
