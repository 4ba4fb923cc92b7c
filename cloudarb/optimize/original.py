"""The original CloudArb request shapes, accepted and translated into an ``OptimizeRequest``.

Clients written against the first CloudArb API send::

    {"name": "...", "description": "...",
     "workloads": [{"gpu_type": "a100", "min_count": 4, "max_count": 8, "workload_type": "training"}],
     "objective": "minimize_cost",
     "constraints": [{"name": "budget", "type": "budget", "operator": "<=", "value": 100}],
     "risk_tolerance": 0.1, "time_horizon_hours": 24}

(or the one-workload shorthand with ``gpu_type``/``min_count``/``max_count`` at the top). The
translation: ``gpu_type`` through the GPU identity table (a family means every variant; 'H100:8' is
8 GPUs per node); ``min_count``/``max_count`` -> ``gpus_min``/``gpus_max``; ``objective``
minimize_cost -> cost, maximize_performance -> performance, balanced -> weighted with cost, risk and
performance weights 1 (one A100-equivalent GPU-hour of throughput is worth $1); each constraint by
its ``type`` (see ``CONSTRAINT_TYPES``); ``time_horizon_hours`` -> ``horizon_hours``. Anything that
cannot be translated is an ``InvalidInput`` naming the field, never silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from cloudarb.errors import InvalidInput
from cloudarb.gpu_names import select
from cloudarb.schemas import Constraints, OfferScope, OptimizeRequest
from optimizer.schemas import Weights, Workload, WorkloadType

OriginalObjective = Literal["minimize_cost", "maximize_performance", "balanced", "balance_cost_performance"]
Operator = Literal["<=", "<", ">=", ">", "==", "=", "in", "not_in"]

_OBJECTIVES: dict[str, tuple[Literal["cost", "performance", "weighted"], Weights]] = {
    "minimize_cost": ("cost", Weights()),
    "maximize_performance": ("performance", Weights()),
    "balanced": ("weighted", Weights(cost=1.0, risk=1.0, performance=1.0)),
    "balance_cost_performance": ("weighted", Weights(cost=1.0, risk=1.0, performance=1.0)),
}

_UPPER = ("<=", "<", "==", "=")
_LOWER = (">=", ">", "==", "=")
CONSTRAINT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "budget": ("budget_per_hour", _UPPER),
    "budget_per_hour": ("budget_per_hour", _UPPER),
    "max_provider_share": ("max_provider_share", _UPPER),
    "provider_share": ("max_provider_share", _UPPER),
    "max_region_share": ("max_region_share", _UPPER),
    "region_share": ("max_region_share", _UPPER),
    "max_spot_share": ("max_spot_share", _UPPER),
    "spot_share": ("max_spot_share", _UPPER),
    "on_demand_floor": ("inference_on_demand_floor", _LOWER),
    "min_vram_gb": ("min_vram_gb", _LOWER),
    "providers": ("providers", ("in", "==", "=")),
    "denied_providers": ("denied_providers", ("not_in",)),
    "regions": ("regions", ("in", "==", "=")),
}
"""Constraint type (or name, when the type is generic) -> the request field it sets, and the
operators that make sense for it. A budget is USD per hour."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OriginalConstraint(_In):
    name: str = Field(default="", max_length=80)
    type: str = Field(default="", max_length=80, description="budget, provider_share, spot_share, regions, ...")
    operator: Operator = "<="
    value: float | str | list[str]


class OriginalWorkload(_In):
    name: str = Field(default="", max_length=200)
    gpu_type: Annotated[str, Field(min_length=1, max_length=80)]
    min_count: Annotated[int, Field(ge=1, le=100_000)]
    max_count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    workload_type: WorkloadType = "training"


class OriginalOptimizeRequest(_In):
    """The first CloudArb API's request (translated; see the module docstring)."""

    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    workloads: list[OriginalWorkload] = Field(default_factory=list, max_length=1000)
    gpu_type: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    min_count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    max_count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    workload_type: WorkloadType = "training"
    objective: OriginalObjective = "minimize_cost"
    constraints: list[OriginalConstraint] = Field(default_factory=list, max_length=100)
    risk_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.5
    time_horizon_hours: Annotated[float, Field(gt=0, le=24 * 366)] = 1.0

    def _workloads(self) -> list[tuple[str, OriginalWorkload]]:
        items = [(f"workloads.{i}", w) for i, w in enumerate(self.workloads)]
        if self.gpu_type is not None:
            if self.min_count is None:
                raise InvalidInput("min_count: required with gpu_type", field="min_count")
            top = OriginalWorkload(gpu_type=self.gpu_type, min_count=self.min_count, max_count=self.max_count,
                                   workload_type=self.workload_type)
            items.append(("", top))
        if not items:
            raise InvalidInput("workloads: give at least one workload (or gpu_type and min_count)", field="workloads")
        return items

    def to_request(self) -> OptimizeRequest:
        workloads = []
        for i, (where, w) in enumerate(self._workloads()):
            prefix = f"{where}." if where else ""
            if w.max_count is not None and w.max_count < w.min_count:
                raise InvalidInput(f"{prefix}max_count: below min_count", field=f"{prefix}max_count")
            chosen = select([w.gpu_type], field=f"{prefix}gpu_type")
            workloads.append(Workload(
                id=w.name or f"workload-{i + 1}", gpus_min=w.min_count, gpus_max=w.max_count,
                gpus_per_node=chosen.gpus_per_instance or 1, allowed_gpu_models=list(chosen.models),
                workload_type=w.workload_type,
            ))
        objective, weights = _OBJECTIVES[self.objective]
        constraints: dict[str, Any] = {}
        scope: dict[str, Any] = {}
        per_workload: dict[str, Any] = {}
        for i, c in enumerate(self.constraints):
            target, value = _constraint(c, f"constraints.{i}")
            if target in Constraints.model_fields:
                constraints[target] = value
            elif target in ("providers", "regions"):
                scope[target] = value
            else:
                per_workload[target] = value
        if per_workload:
            workloads = [_apply(w, per_workload) for w in workloads]
        return OptimizeRequest(
            name=self.name or self.description[:200],
            workloads=workloads,
            objective=objective,
            weights=weights,
            constraints=Constraints(**constraints),
            risk_tolerance=self.risk_tolerance,
            horizon_hours=self.time_horizon_hours,
            offers=OfferScope(**scope),
        )


def _constraint(c: OriginalConstraint, field: str) -> tuple[str, Any]:
    kind = c.type if c.type in CONSTRAINT_TYPES else c.name
    found = CONSTRAINT_TYPES.get(kind)
    if found is None:
        raise InvalidInput(
            f"{field}.type: unknown constraint {c.type or c.name!r}; known: {', '.join(CONSTRAINT_TYPES)}",
            field=f"{field}.type",
        )
    target, operators = found
    if c.operator not in operators:
        raise InvalidInput(f"{field}.operator: {kind} takes {', '.join(operators)}", field=f"{field}.operator")
    lists = target in ("providers", "regions", "denied_providers")
    if lists:
        value = [c.value] if isinstance(c.value, str) else c.value
        if not isinstance(value, list):
            raise InvalidInput(f"{field}.value: {kind} takes a list of names", field=f"{field}.value")
        return target, [v.lower() if target != "regions" else v for v in value]
    if not isinstance(c.value, int | float):
        raise InvalidInput(f"{field}.value: {kind} takes a number", field=f"{field}.value")
    return target, float(c.value)


def _apply(w: Workload, values: dict[str, Any]) -> Workload:
    update: dict[str, Any] = {}
    if "min_vram_gb" in values:
        update["min_vram_gb"] = max(w.min_vram_gb, values["min_vram_gb"])
    if "denied_providers" in values:
        update["denied_providers"] = list(values["denied_providers"])
    return w.model_copy(update=update)


_ORIGINAL_KEYS = frozenset({"gpu_type", "min_count", "max_count", "time_horizon_hours", "description"})


def request_shape(data: Any) -> str:
    """'original' for the first API's shape, 'current' otherwise (a dict or a model)."""
    if isinstance(data, OriginalOptimizeRequest):
        return "original"
    if not isinstance(data, dict):
        return "current"
    if _ORIGINAL_KEYS & data.keys() or isinstance(data.get("constraints"), list):
        return "original"
    if data.get("objective") in _OBJECTIVES:
        return "original"
    workloads = data.get("workloads")
    if isinstance(workloads, list) and any(isinstance(w, dict) and "gpu_type" in w for w in workloads):
        return "original"
    return "current"


def _parse(data: Any) -> OptimizeRequest | OriginalOptimizeRequest:
    """Validate as the shape ``request_shape`` names (errors keep the request's own field paths)."""
    if isinstance(data, OptimizeRequest | OriginalOptimizeRequest):
        return data
    model = OriginalOptimizeRequest if request_shape(data) == "original" else OptimizeRequest
    return model.model_validate(data)


AnyOptimizeRequest = Annotated[
    OptimizeRequest | OriginalOptimizeRequest,
    PlainValidator(_parse, json_schema_input_type=OptimizeRequest | OriginalOptimizeRequest),
]
"""The body of ``POST /optimize`` and of a request file: today's shape or the original one."""


def to_current(body: OptimizeRequest | OriginalOptimizeRequest) -> OptimizeRequest:
    return body.to_request() if isinstance(body, OriginalOptimizeRequest) else body
