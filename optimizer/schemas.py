"""Typed inputs and outputs of the allocation optimizer.

These models are the library's whole public contract: the application builds a ``Problem`` from its
stored rows and reads a ``Solution`` back. Nothing here knows about databases, HTTP or queues.
Fields may be added (with defaults); existing names keep their meaning.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegFloat = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(gt=0, le=1)]
Identifier = Annotated[str, Field(min_length=1, max_length=200)]

WorkloadType = Literal["training", "inference", "batch"]
Objective = Literal["cost", "performance", "weighted"]
CapacityKind = Literal["pool", "listing"]
Placement = Literal["same_zone", "same_region", "any"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Offer(_Model):
    """One rentable instance shape at one place and price (one row of the current offers)."""

    id: Identifier = Field(description="Stable offer key, unique within a problem.")
    provider: Identifier = Field(description="Lowercase provider key, e.g. 'aws', 'lambda', 'vast'.")
    region: str = Field(default="", max_length=200)
    zone: str | None = Field(default=None, max_length=200)
    instance_type: str = Field(default="", max_length=200)
    gpu_model: Identifier = Field(description="Canonical GPU model name, e.g. 'H100 SXM'.")
    gpus_per_instance: int = Field(ge=1, le=64)
    vram_gb_per_gpu: NonNegFloat = 0.0
    vcpus: NonNegFloat | None = None
    ram_gb: NonNegFloat | None = None
    spot: bool = False
    price_per_hour: NonNegFloat = Field(description="USD per instance-hour.")
    price_scenarios: list[NonNegFloat] | None = Field(
        default=None, description="Sampled USD/instance-hour prices (equally likely) for the CVaR term."
    )
    price_per_period: list[NonNegFloat] | None = Field(
        default=None, description="Forecast USD/instance-hour for each period of the horizon."
    )
    available_instances: int | None = Field(
        default=None, ge=0, description="Instances the seller states it can rent out now; None = not stated."
    )
    capacity_kind: CapacityKind = Field(
        default="pool",
        description="What one offer is when ``available_instances`` is not stated: 'pool' = an instance type a "
        "cloud rents many of (the problem's ``default_available_instances`` applies); 'listing' = one machine "
        "(a marketplace listing, a workstation): 1 instance.",
    )
    seller: str | None = Field(
        default=None, max_length=200,
        description="The seller inside a marketplace or reseller (provider 'shadeform', seller 'lambdalabs'); "
        "offers of different sellers are never one placement.",
    )
    interruption_rate_per_hour: NonNegFloat | None = Field(default=None, description="Spot only.")
    reliability: Annotated[float, Field(ge=0, le=1)] | None = None
    committed_price_per_hour: NonNegFloat | None = None
    egress_usd_per_gb: NonNegFloat = 0.0
    capacity_pool: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="A capacity pool the offer's GPUs come from (a key of ``Problem.capacity_pools``): offers of "
        "one pool share its GPUs, e.g. the 1-, 2- and 4-GPU sizes of one host. None: the offer's own capacity only.",
    )
    launch_success_probability: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="Share of launch requests that get capacity (spot requests refused for capacity lower it); "
        "None = not known, taken as 1. Enters the expected cost of a line (see the optimizer README).",
    )

    @property
    def price_per_gpu_hour(self) -> float:
        return self.price_per_hour / self.gpus_per_instance


class Workload(_Model):
    """A job or service that needs GPUs."""

    id: Identifier
    gpus_min: int = Field(ge=1, le=100_000, description="GPUs that must be allocated.")
    gpus_max: int | None = Field(default=None, ge=1, le=100_000, description="Useful upper bound.")
    gpus_per_node: int = Field(default=1, ge=1, le=64, description="GPUs needed on one instance.")
    min_vram_gb: NonNegFloat = 0.0
    allowed_gpu_models: list[Identifier] | None = Field(default=None, max_length=200)
    performance: dict[str, NonNegFloat] | None = Field(
        default=None, description="Relative throughput per GPU model (overrides the default table)."
    )
    workload_type: WorkloadType = "training"
    spot_tolerant: bool = False
    checkpoint_interval_hours: NonNegFloat = 1.0
    allowed_providers: list[Identifier] | None = Field(default=None, max_length=100)
    denied_providers: list[Identifier] = Field(default_factory=list, max_length=100)
    allowed_regions: list[Identifier] | None = Field(default=None, max_length=1000)
    denied_regions: list[Identifier] = Field(default_factory=list, max_length=1000)
    data_location: str | None = None
    data_size_gb: NonNegFloat = 0.0
    priority: int = Field(default=1, ge=1, le=10)
    placement: Placement = Field(
        default="same_region",
        description="Where the workload's nodes must sit together: 'same_region' (one provider, seller, region "
        "and spot/on-demand kind), 'same_zone' (also one zone; an offer without a zone only with itself), "
        "'any' (no co-location).",
    )
    elastic: bool | None = Field(
        default=None,
        description="True when the workload may be split across several placements (independent replicas, "
        "shards). None: by type, inference services are elastic (replicas), training and batch jobs are not.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Workload:
        if self.gpus_max is not None and self.gpus_max < self.gpus_min:
            raise ValueError("gpus_max must be >= gpus_min")
        return self

    @property
    def splits(self) -> bool:
        """``elastic`` resolved: may the workload's instances be in several placements?"""
        return self.elastic if self.elastic is not None else self.workload_type == "inference"

    @property
    def placed(self) -> bool:
        """True when every instance of the workload must be in one placement."""
        return not self.splits and self.placement != "any"

    @property
    def variable_need(self) -> bool:
        """True when the GPUs it needs are the usable GPUs it gets (up to gpus_max), not gpus_min.

        ``gpus_max`` defaults to ``gpus_min`` unless the workload is elastic; an elastic workload without
        ``gpus_max`` still needs only ``gpus_min`` (whole instances may overshoot it, the overshoot is surplus).
        """
        return self.gpus_max is not None and self.gpus_max > self.gpus_min


class CurrentLine(_Model):
    workload_id: Identifier
    offer_id: Identifier
    instances: int = Field(ge=0)


class GpuFigures(_Model):
    """Data-sheet figures of one GPU model, as the caller's GPU identity table gives them."""

    fp16_tflops: Annotated[float, Field(gt=0)] = Field(description="Dense FP16/BF16 tensor TFLOPS (no sparsity).")
    memory_bandwidth_gbps: Annotated[float, Field(gt=0)] = Field(description="Memory bandwidth, GB/s.")


class Weights(_Model):
    cost: NonNegFloat = 1.0
    performance: NonNegFloat = 0.0
    risk: NonNegFloat = 0.0


class Problem(_Model):
    offers: list[Offer] = Field(max_length=1_000_000)
    workloads: list[Workload] = Field(min_length=1, max_length=100_000)
    budget_per_hour: NonNegFloat | None = None
    max_provider_share: Share | None = None
    max_region_share: Share | None = None
    max_spot_share: Annotated[float, Field(ge=0, le=1)] | None = None
    inference_on_demand_floor: Annotated[float, Field(ge=0, le=1)] = 0.0
    horizon_hours: Annotated[float, Field(gt=0, le=24 * 366)] = 1.0
    period_hours: Annotated[float, Field(gt=0)] = 1.0
    risk_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.5
    cvar_alpha: Annotated[float, Field(gt=0, lt=1)] = 0.95
    objective: Objective = "cost"
    weights: Weights = Weights()
    current_allocation: list[CurrentLine] = Field(default_factory=list)
    migration_cost_per_gpu: NonNegFloat = Field(
        default=0.0, description="One-off USD per GPU moved off a current line, amortized over the horizon."
    )
    default_available_instances: int | None = Field(
        default=16, ge=0,
        description="Instances assumed available for 'pool' offers that do not state their capacity "
        "(None = unlimited, only for what-if studies). 'listing' offers are one machine.",
    )
    default_spot_interruption_rate_per_hour: NonNegFloat = Field(
        default=0.01, description="Interruption rate assumed for spot offers that do not state one."
    )
    use_committed_prices: bool = Field(
        default=False, description="Price offers at their committed-use/reserved price where one is given."
    )
    min_reliability: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="Offers whose reliability score is below this are not used."
    )
    max_expected_interruption_cost_per_hour: NonNegFloat | None = Field(
        default=None, description="Hard cap on the expected interruption cost (rate x lost work x price)."
    )
    min_performance: NonNegFloat | None = Field(
        default=None, description="Floor on the total performance score (A100-equivalent GPUs)."
    )
    max_cvar_per_hour: NonNegFloat | None = Field(
        default=None, description="Hard cap on the CVaR (at cvar_alpha) of the hourly cost over price scenarios."
    )
    pareto_points: int | None = Field(
        default=None, ge=0, le=50,
        description="Points per Pareto front (cost/risk, cost/performance) to return; overrides the solve "
        "config's ``pareto_points`` when set.",
    )
    gpu_figures: dict[str, GpuFigures] = Field(
        default_factory=dict,
        description="Data-sheet figures per GPU model from the caller's GPU table; they win over the "
        "optimizer's built-in table for the default performance score.",
    )
    capacity_pools: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="GPUs of each capacity pool (``Offer.capacity_pool``): the instances chosen from a pool's "
        "offers, times their GPUs per instance, sum to at most this, in every period.",
    )
    min_launch_success_probability: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="Offers whose launch success probability is below this are not used."
    )
    launch_retry_hours: NonNegFloat = Field(
        default=1.0,
        description="Hours one refused launch costs (the wait before the next try), valued at the line's price: "
        "the expected launch cost of a line is price x retry hours x (1 - p) / p x (1 / horizon + interruption "
        "rate) per instance-hour (every interruption is a relaunch). 0 turns the term off.",
    )

    @model_validator(mode="after")
    def _pools_named(self) -> Problem:
        unknown = sorted({o.capacity_pool for o in self.offers
                          if o.capacity_pool is not None and o.capacity_pool not in self.capacity_pools})
        if unknown:
            raise ValueError(f"offers name capacity pools missing from capacity_pools: {unknown[:5]}")
        return self


class SolveConfig(_Model):
    backend: Literal["ortools", "pulp"] = "ortools"
    time_limit_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    relative_gap: Annotated[float, Field(ge=0, le=1)] = 1e-3
    threads: int = Field(default=1, ge=1, le=64)
    pareto_points: int = Field(default=0, ge=0, le=50)
    pareto_axis: Literal["risk", "performance", "both"] = Field(
        default="both", description="Which trade-off curves the Pareto set sweeps against cost."
    )
    method: Literal["auto", "direct"] = Field(
        default="auto",
        description="'auto': presolve, LP bound, rounding, focused integer solves. "
        "'direct': one plain MILP solve of the whole model (the out-of-the-box reference).",
    )
    presolve: bool = Field(default=True, description="Merge identical and drop dominated offers first.")
    mip_solver: Literal["auto", "scip", "cp_sat"] = "auto"
    lp_solver: Literal["auto", "glop", "pdlp"] = "auto"
    isolate: Literal["auto", "always", "never"] = Field(
        default="auto", description="Run the solve in a spawned process ('auto': only for large problems)."
    )
    compute_baselines: bool = True


class Progress(_Model):
    """A progress report emitted while solving."""

    phase: str
    percent: float | None = None
    message: str = ""
    incumbent: float | None = None
    bound: float | None = None
    gap: float | None = None


class AllocationLine(_Model):
    workload_id: str
    offer_id: str
    provider: str
    region: str
    instance_type: str
    gpu_model: str
    instances: int
    gpus: int
    hourly_cost: float
    spot: bool
    period: int | None = Field(default=None, description="Period index of a multi-period horizon.")
    launch_success_probability: float | None = Field(
        default=None, description="The offer's launch success probability, when it states one (the optimizer "
        "priced the line's refused launches from it).",
    )


class Totals(_Model):
    cost_per_hour: float
    cost_over_horizon: float
    gpus: int
    performance_score: float
    egress_cost_per_hour: float = Field(default=0.0, description="Data movement, amortized over the horizon.")
    migration_cost: float = Field(default=0.0, description="One-off USD of moving GPUs off current lines.")


class RiskMetrics(_Model):
    expected_interruptions_per_hour: float = 0.0
    expected_interruption_cost_per_hour: float = 0.0
    cvar_cost_per_hour: float | None = None
    largest_provider_share: float = Field(
        default=0.0, description="Largest usable GPUs at one provider over the GPUs the fleet needs (as the cap counts)."
    )
    expected_launch_cost_per_hour: float = Field(
        default=0.0, description="Expected cost of refused launches (waits valued at the line's price), USD/h; part "
        "of the objective, not of the cost paid.",
    )


BaselineName = Literal["single_provider_on_demand", "greedy_cheapest", "skypilot_rule"]


class Savings(_Model):
    baseline: BaselineName
    baseline_cost_per_hour: float | None
    savings_per_hour: float | None
    savings_pct: float | None
    honours_constraints: bool | None = Field(
        default=None,
        description="True when the baseline's plan meets every hard constraint of the problem (checked by "
        "optimizer.validate); None when it has no plan.",
    )
    violated: list[str] = Field(default_factory=list, description="Constraints the baseline's plan breaks.")
    note: str = Field(default="", description="Why there is no plan, or what the baseline's rule is.")


class BindingConstraint(_Model):
    name: str
    shadow_price: float
    description: str = ""


class SolverStats(_Model):
    backend: str
    status: str
    objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    variables: int = 0
    constraints: int = 0
    sense: Literal["min", "max"] = Field(
        default="min", description="'max' when the objective is performance (objective and bound are then maxima)."
    )
    lp_bound: float | None = Field(default=None, description="Objective of the LP relaxation (a valid bound).")
    presolve_offers_removed: int = 0
    engine: str = Field(default="", description="Engines used, e.g. 'glop+cp_sat'.")
    phases: dict[str, float] = Field(default_factory=dict, description="Seconds spent per phase.")


class ParetoPoint(_Model):
    """One non-dominated allocation of a trade-off curve (its own solve)."""

    cost_per_hour: float
    risk_per_hour: float = Field(description="CVaR of hourly cost with price scenarios, else expected interruption cost.")
    performance: float
    expected_interruption_cost_per_hour: float
    cvar_cost_per_hour: float
    gap: float


class ParetoFronts(_Model):
    cost_risk: list[ParetoPoint] = Field(default_factory=list)
    cost_performance: list[ParetoPoint] = Field(default_factory=list)


SolutionStatus = Literal["optimal", "feasible", "infeasible", "no_solution"]


class Solution(_Model):
    status: SolutionStatus
    allocations: list[AllocationLine] = Field(default_factory=list)
    totals: Totals | None = None
    risk: RiskMetrics = RiskMetrics()
    savings: list[Savings] = Field(default_factory=list)
    binding_constraints: list[BindingConstraint] = Field(default_factory=list)
    stats: SolverStats
    infeasibility_reason: str | None = None
    pareto: list[dict[str, float]] = Field(default_factory=list)
    fronts: ParetoFronts | None = Field(default=None, description="The Pareto fronts, when points were asked for.")
