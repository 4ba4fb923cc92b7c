"""Typed shapes of the deploy stage: what a deploy request asks per line, and the plan stored on a
deployment (``Deployment.spec``). API answers are in ``cloudarb.deploy.views``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Port = Annotated[int, Field(ge=1, le=65535)]


class LaunchOptions(BaseModel):
    """How to start each instance of one line."""

    model_config = ConfigDict(extra="forbid")
    image: Annotated[str, Field(min_length=1, max_length=300)] = Field(
        default="ubuntu:22.04", description="Container or machine image, as the provider names it.")
    template: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="A provider template id instead of an image (RunPod, Vast).")
    ports: list[Port] = Field(default_factory=list, max_length=50, description="Ports to open besides SSH.")
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")],
              Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict, max_length=100)
    disk_gb: Annotated[int, Field(ge=10, le=100_000)] = 100


class PlannedLine(BaseModel):
    """One line of a deployment: an offer and how many instances of it."""

    index: int
    workload_id: str = ""
    offer_key: str
    provider: str
    seller: str = ""
    region: str = ""
    zone: str | None = None
    instance_type: str = ""
    gpu_model: str = ""
    gpus_per_instance: int = 1
    instances: Annotated[int, Field(ge=1)] = 1
    spot: bool = False
    price_per_hour: float = Field(description="Per instance, USD, as recorded when the plan was made.")
    launch: LaunchOptions = LaunchOptions()


class Plan(BaseModel):
    """What ``Deployment.spec`` holds."""

    lines: list[PlannedLine]
    account: str = "default"
