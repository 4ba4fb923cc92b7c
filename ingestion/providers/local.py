"""Local workstations: GPUs the user registered, at a price the owner sets.

No HTTP and no credentials: the configuration *is* the catalog. Local capacity competes with the
clouds in the same optimization (the local-container deploy path runs on these machines), so each
workstation becomes an ordinary on-demand quote. An owner price of 0 is allowed (capacity that is
already paid for); the optimizer then weighs only risk and performance.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingestion.gpus import resolve_gpu
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.schemas import PriceQuote


class Workstation(BaseModel):
    """One registered machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique name; becomes the instance type.")
    gpu_model: str = Field(min_length=1, description="Any spelling ('RTX 4090', 'NVIDIA A100-SXM4-80GB').")
    gpu_count: int = Field(ge=1, le=64)
    vram_gb: float | None = Field(default=None, ge=0, description="Per GPU, if the name does not say.")
    vcpus: float | None = Field(default=None, ge=0)
    ram_gb: float | None = Field(default=None, ge=0)
    price_per_hour: float = Field(ge=0, description="Owner-set USD per hour for the whole machine.")
    site: str = Field(default="local", max_length=120, description="Where it is (becomes the region).")
    available: bool = Field(default=True, description="False while the owner uses it.")
    reliability: float | None = Field(default=None, ge=0, le=1)


class LocalConfig(ProviderConfig):
    """The registered workstations (HTTP settings are unused)."""

    workstations: tuple[Workstation, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> LocalConfig:
        names = [w.name for w in self.workstations]
        if len(set(names)) != len(names):
            raise ValueError(f"workstation names must be unique: {sorted(names)}")
        return self


class LocalProvider:
    """Registered workstations -> quotes."""

    key: ClassVar[str] = "local"
    config_class: ClassVar[type[ProviderConfig]] = LocalConfig

    def __init__(self, *, config: LocalConfig) -> None:
        self.config = config

    def fetch(self) -> list[PriceQuote]:
        now = self.config.clock()
        quotes: list[PriceQuote] = []
        for ws in self.config.workstations:
            match = resolve_gpu(ws.gpu_model, vram_gb=ws.vram_gb)
            quotes.append(
                make_quote(
                    self.key,
                    dict(
                        region=ws.site,
                        instance_type=ws.name,
                        gpu_model=match.model,
                        gpu_model_raw=ws.gpu_model,
                        gpu_model_known=match.known,
                        gpu_count=ws.gpu_count,
                        vram_gb=ws.vram_gb if ws.vram_gb is not None else match.vram_gb,
                        vcpus=ws.vcpus,
                        ram_gb=ws.ram_gb,
                        spot=False,
                        price_per_hour=ws.price_per_hour,
                        capacity="available" if ws.available else "unavailable",
                        available_instances=1 if ws.available else 0,
                        reliability=ws.reliability,
                        observed_at=now,
                    ),
                )
            )
        return quotes
