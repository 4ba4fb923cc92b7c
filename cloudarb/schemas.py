"""Request and response schemas shared by the API, the CLI and the jobs (no table models here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cloudarb.gpu_names import select
from optimizer.schemas import (
    BindingConstraint,
    Objective,
    ParetoFronts,
    RiskMetrics,
    Savings,
    SolutionStatus,
    SolverStats,
    Totals,
    Weights,
    Workload,
    WorkloadType,
)

JobStatus = Literal["queued", "running", "finished", "infeasible", "failed", "canceled"]
Name = Annotated[str, Field(max_length=200)]


# Constrained input types shared by every request model: PostgreSQL refuses NUL in text and
# non-finite numbers in JSONB, and dates outside 1970-2200 overflow on conversion, so such input is
# a 422 naming the field, never a 500 from the database. (``cloudarb.api.guard`` also checks every
# JSON body and query string for NUL, non-finite numbers and integers out of range.)
MIN_DATE = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(2200, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _bounded_date(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone (e.g. 2026-07-01T13:00:00Z)")
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must lie between {MIN_DATE:%Y-%m-%d} and {MAX_DATE:%Y-%m-%d}")
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
BoundedDatetime = Annotated[datetime, AfterValidator(_bounded_date)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Constraints(_In):
    budget_per_hour: Annotated[float, Field(ge=0, le=1e7)] | None = Field(
        default=None, description="Hard cap on the fleet's cost, USD per hour."
    )
    max_provider_share: Annotated[float, Field(gt=0, le=1)] | None = None
    max_region_share: Annotated[float, Field(gt=0, le=1)] | None = None
    max_spot_share: Annotated[float, Field(ge=0, le=1)] | None = None
    inference_on_demand_floor: Annotated[float, Field(ge=0, le=1)] = 0.0
    min_launch_success_probability: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="Leave out spot offers whose launches get capacity less often than this (the "
        "share from the spot traces and our fleet's refused launches, GET /offers launch_success).",
    )


class OfferScope(_In):
    """Which stored offers the optimization may use."""

    providers: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=50)
    regions: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(default_factory=list, max_length=500)
    max_age_s: Annotated[int, Field(ge=1, le=10 * 366 * 86400)] | None = Field(
        default=None, description="Ignore offers whose price is older than this (seconds, at most ten years)."
    )
    include_spot: bool = True
    fresh_only: bool = Field(
        default=False,
        description="Only offers younger than their provider's configured max age (CLOUDARB_OFFER_MAX_AGE_S).",
    )


class OptimizeRequest(_In):
    name: Name = ""
    workloads: list[Workload] = Field(min_length=1, max_length=1000)
    objective: Objective = "cost"
    weights: Weights = Weights()
    constraints: Constraints = Constraints()
    risk_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.5
    horizon_hours: Annotated[float, Field(gt=0, le=24 * 366)] = 1.0
    offers: OfferScope = OfferScope()
    time_limit_s: Annotated[float, Field(gt=0, le=600)] | None = None
    backend: Literal["ortools", "pulp"] = "ortools"
    pareto_points: Annotated[int, Field(ge=0, le=50)] | None = Field(
        default=None,
        description="Points per Pareto front (cost/risk and cost/performance) to return in the result's "
        "``fronts``; each point is its own solve. Unset or 0: none.",
    )

    @model_validator(mode="after")
    def _unique_workloads(self) -> OptimizeRequest:
        ids = [w.id for w in self.workloads]
        if len(set(ids)) != len(ids):
            raise ValueError("workload ids must be unique")
        return self


class QuickOptimizeRequest(_In):
    """The shortest question, as the original quick-start asks it: N GPUs of one type, one workload."""

    gpu_type: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="A GPU name as people type it: 'a100' (every A100), 'H100 SXM', 'A100 80GB', 'H100:8' "
        "(8 GPUs per node)."
    )
    gpu_count: Annotated[int, Field(ge=1, le=10_000)]
    workload_type: WorkloadType = "training"
    budget_per_hour: Annotated[float, Field(gt=0, le=1e7)] | None = None
    spot_tolerant: bool = False

    def to_request(self) -> OptimizeRequest:
        chosen = select([self.gpu_type], field="gpu_type")
        workload = Workload(
            id="quick",
            gpus_min=self.gpu_count,
            gpus_per_node=chosen.gpus_per_instance or 1,
            allowed_gpu_models=list(chosen.models),
            workload_type=self.workload_type,
            spot_tolerant=self.spot_tolerant,
        )
        return OptimizeRequest(
            name=f"quick: {self.gpu_count} x {self.gpu_type}",
            workloads=[workload],
            constraints=Constraints(budget_per_hour=self.budget_per_hour),
        )


class JobAccepted(BaseModel):
    id: str = Field(description="The optimization id.")
    job_id: str
    status: JobStatus
    websocket_url: str
    status_url: str


class OptimizationResultOut(BaseModel):
    """What a finished (or infeasible) optimization found: the solver's answer less its allocation
    lines (``GET /optimize/{id}/allocations``), plus where its prices came from."""

    status: SolutionStatus
    totals: Totals | None = None
    risk: RiskMetrics = RiskMetrics()
    savings: list[Savings] = Field(default_factory=list)
    binding_constraints: list[BindingConstraint] = Field(default_factory=list)
    stats: SolverStats
    infeasibility_reason: str | None = None
    pareto: list[dict[str, float]] = Field(default_factory=list)
    fronts: ParetoFronts | None = Field(default=None, description="The Pareto fronts, when pareto_points was set.")
    cost_per_hour: float | None = None
    offers_considered: int = 0
    prices_as_of: datetime | None = Field(default=None, description="Newest price observation used.")
    stale_prices: str | None = Field(
        default=None, description="Set when the newest price used is older than CLOUDARB_PRICE_STALE_AFTER_S."
    )
    policy_decision: Literal["adopt", "keep_current"] | None = Field(
        default=None, description="For policy runs: whether this result replaced the current allocation."
    )
    current_cost_per_hour: float | None = None
    savings_vs_current_pct: float | None = None
    demand_bounds: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="For policy runs sized by the demand forecast: per workload, the stated and applied GPU counts.",
    )


class OptimizationOut(BaseModel):
    id: str
    name: str
    status: JobStatus
    job_id: str | None
    policy_id: str | None
    created_at: datetime
    updated_at: datetime
    request: dict[str, Any]
    result: OptimizationResultOut | None = None
    error: str | None = None


class AllocationOut(BaseModel):
    workload_id: str
    offer_key: str
    provider: str
    seller: str = Field(default="", description="The seller inside a marketplace; empty when the provider sells.")
    region: str
    instance_type: str
    gpu_model: str
    instances: int
    gpus: int
    hourly_cost: float
    spot: bool
    launch_success_probability: float | None = Field(
        default=None, description="Share of this line's launches expected to get capacity, as the optimizer "
        "priced it (a spot offer's traces and our fleet's record); None where the offer states none.")


class OfferRiskOut(BaseModel):
    """A spot offer's interruption risk as the optimizer gets it, and where it came from."""

    interruption_rate_per_hour: float | None = Field(
        description="Served rate (None until an optimize job has computed the offer's prior).")
    prior_rate_per_hour: float | None = Field(description="Before our fleet's evidence.")
    source: str = Field(description="'provider' (stated), 'advisor' or 'advisor+traces', then our fleet's record: "
                        "'our fleet: N interruptions in H h, L of T launches got capacity'.")
    launch_success: float | None = Field(
        default=None, description="Share of spot launches that get capacity (traces and our fleet).")
    fleet_interruptions: int = 0
    fleet_exposure_hours: float = 0.0
    fleet_launches: int = 0
    fleet_launch_refusals: int = 0
    fleet_mean_time_to_running_s: float | None = Field(default=None, description="Launch to running, our fleet's mean.")


class OfferOut(BaseModel):
    offer_key: str
    provider: str
    seller: str = Field(default="", description="The seller inside a marketplace; empty when the provider sells.")
    region: str
    zone: str
    instance_type: str
    gpu_model: str
    gpu_model_known: bool
    gpu_count: int
    vram_gb: float
    vcpus: float | None
    ram_gb: float | None
    spot: bool
    price_per_hour: float
    price_per_gpu_hour: float
    capacity: str
    available_instances: int | None
    reliability: float | None
    observed_at: datetime
    age_s: float
    risk: OfferRiskOut | None = Field(default=None, description="Spot offers only.")


class OfferPage(BaseModel):
    """One page of current offers, and a plain warning when their prices are old."""

    items: list[OfferOut]
    total: int
    limit: int
    offset: int
    newest_price_at: datetime | None = Field(default=None, description="Newest price observation stored.")
    stale_prices: str | None = Field(
        default=None, description="Set when the newest price is older than CLOUDARB_PRICE_STALE_AFTER_S."
    )


class GpuPrice(BaseModel):
    price_per_gpu_hour: float = Field(description="Cheapest USD per GPU-hour among current offers.")
    provider: str
    observed_at: datetime = Field(description="Newest price of that provider's offers of this GPU.")
    age_s: float


class GpuOut(BaseModel):
    """One GPU model of the identity table, and what the current offers ask for it."""

    name: str = Field(description="Canonical name, e.g. 'H100 SXM'.")
    family: str = Field(description="The family name people type for every variant ('H100').")
    vendor: str
    architecture: str
    memory_gb: float = Field(description="Memory per GPU, GB.")
    memory_type: str
    form_factor: str
    aliases: list[str]
    providers: list[str] = Field(description="Providers with current offers of this model.")
    offers: int
    on_demand: GpuPrice | None = None
    spot: GpuPrice | None = None


class GpuList(BaseModel):
    items: list[GpuOut]
    newest_price_at: datetime | None = None
    stale_prices: str | None = Field(
        default=None, description="Set when the newest price is older than CLOUDARB_PRICE_STALE_AFTER_S."
    )


class JobOut(BaseModel):
    id: str
    kind: str
    target_id: str
    status: JobStatus
    attempts: int
    max_attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
