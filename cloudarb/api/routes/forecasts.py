"""Forecasts: stored price/demand forecasts, their backtests, refresh jobs, usage, demand opt-in.

The API only reads stored rows and enqueues jobs: no forecasting engine is imported here. Price
forecasts are market data (every organization sees them); demand forecasts, usage and the demand
opt-in of a policy belong to the caller's organization, and another organization's look the same as
ones that do not exist (404).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from cloudarb.api.deps import CtxDep, Editor, PageDep, SessionDep, Viewer, job_ws_url
from cloudarb.db.models import DemandPolicy, ForecastModelVersion, Offer, StoredForecast
from cloudarb.errors import InvalidInput, NotFound
from cloudarb.forecasts import store
from cloudarb.forecasts.submit import submit_forecast
from cloudarb.optimize import policy_store
from cloudarb.schemas import BoundedDatetime, JobStatus, Page
from cloudarb.storage import audit

router = APIRouter(prefix="/forecasts", tags=["forecasts"])

Names = Annotated[list[Annotated[str, Query(min_length=1, max_length=120)]], Query(max_length=50)]
SeriesKeys = Annotated[
    list[Annotated[str, Query(min_length=1, max_length=300)]],
    Query(max_length=50, description="Series keys, e.g. 'price:<offer_key>' or 'demand:<workload_id>'."),
]
Levels = Annotated[
    list[Annotated[float, Query(gt=0, lt=1)]],
    Query(max_length=20, description="Quantile levels to return (default: all stored)."),
]
PolicyId = Annotated[str, Path(min_length=1, max_length=64)]


class BacktestBrief(BaseModel):
    selected: str | None
    mase: float | None = Field(description="MASE of the selected model on its selection backtest.")
    smape: float | None
    coverage: float | None = Field(description="Share of actuals inside the central interval.")
    n_origins: int


class StepSkillOut(BaseModel):
    step: int = Field(description="Steps ahead (1 = the first forecast step).")
    served: str = Field(description="Model served at this step ('last_value' where no candidate earned it).")
    candidate: str | None = Field(description="Best candidate judged at this step.")
    wins: int = Field(description="Backtest origins where the candidate's error was below last value's.")
    losses: int
    p_value: float | None = Field(description="One-sided sign test of wins against losses.")
    candidate_mae: float | None
    last_value_mae: float | None


class SkillOut(BaseModel):
    """Whether the served forecast earned its place against last value, out of sample."""

    has_skill: bool = Field(description="Some step is served by a model rather than last value.")
    reason: str = Field(description="One line: why a model or last value is served.")
    rule: str = Field(description="The rule a candidate had to pass, in words.")
    n_origins: int = Field(description="Backtest origins the rule was judged on.")
    steps: list[StepSkillOut]
    backtest_coverage: float | None = Field(description="Coverage of the served interval at the backtest origins.")
    interval_scale: float = Field(description="Factor by which the intervals were widened to cover.")


class ForecastOut(BaseModel):
    series_key: str
    kind: Literal["price", "demand"]
    offer_key: str | None
    workload_id: str | None
    provider: str | None = None
    region: str | None = None
    gpu_model: str | None = None
    spot: bool | None = None
    created_at: datetime
    origin: datetime = Field(description="Time of the first forecast step.")
    step: str = Field(description="pandas frequency of the steps ('h' = hourly).")
    horizon: int
    model: str
    fallback: bool
    fallback_reason: str | None
    last_observed: float | None = Field(description="Last observed value the forecast started from.")
    timestamps: list[datetime]
    point: list[float]
    quantiles: dict[str, list[float]] = Field(description="Quantile level -> path.")
    scenarios: list[list[float]] | None = Field(description="Joint sample paths (only with scenarios=true).")
    backtest: BacktestBrief | None = Field(description="How the served model did on its backtest (None: fallback).")
    skill: SkillOut | None = Field(
        default=None, description="The skill check against last value (price forecasts); None for forecasts "
        "stored before the check or for kinds without it.")


class VersionOut(BaseModel):
    id: str
    model: str
    trained_at: datetime
    is_champion: bool
    decision: str
    metrics: dict[str, Any]


class BacktestOut(BaseModel):
    series_key: str
    kind: str
    model: str = Field(description="Model serving the latest forecast.")
    fallback_reason: str | None
    origin: datetime
    created_at: datetime
    backtest: dict[str, Any] | None = Field(
        description="Rolling-origin backtest of every candidate and baseline (metrics per model), None when a "
        "fallback skipped selection."
    )
    champion: VersionOut | None
    versions: list[VersionOut] = Field(description="Trained versions, newest first, with their metrics.")


class RefreshIn(BaseModel):
    kind: Literal["price", "demand"] = Field(
        default="price", description="'price': every offer with history; 'demand': your organization's usage."
    )
    full_refit: bool = Field(default=False, description="Rerun model selection (champion/challenger).")


class ForecastJobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    kind: str
    full_refit: bool
    websocket_url: str
    status_url: str


class UsagePoint(BaseModel):
    workload_id: Annotated[str, Field(min_length=1, max_length=200)]
    hour: BoundedDatetime = Field(description="Start of the hour (truncated), with a time zone, 1970-2200.")
    gpu_hours: Annotated[float, Field(ge=0, le=1_000_000)]
    gpus_at_end: Annotated[float | None, Field(ge=0, le=1_000_000)] = Field(
        default=None, description="GPUs running when the hour ended (optional scheduler reading).")
    gpus_started: Annotated[float | None, Field(ge=0, le=1_000_000)] = Field(
        default=None, description="GPUs of the jobs started during the hour (optional scheduler reading).")

    @field_validator("hour")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-07-01T13:00:00Z)")
        return value


class UsageIn(BaseModel):
    points: list[UsagePoint] = Field(min_length=1, max_length=10_000)


class UsageStored(BaseModel):
    stored: int


class DemandPolicyOut(BaseModel):
    policy_id: str
    quantile: float
    horizon_hours: int
    created_at: datetime


def _brief(summary: dict[str, Any] | None) -> BacktestBrief | None:
    if not summary or not summary.get("selected"):
        return None
    m = summary.get("metrics", {}).get(summary["selected"], {})

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

    return BacktestBrief(selected=summary["selected"], mase=num(m.get("mase")), smape=num(m.get("smape")),
                         coverage=num(m.get("coverage")), n_origins=len(summary.get("origins", [])))


def _levels(row: StoredForecast) -> dict[float, str]:
    return {float(k): k for k in row.paths.get("quantiles", {})}


def _out(row: StoredForecast, offer: Offer | None, *, horizon: int | None, levels: list[float],
         scenarios: bool) -> ForecastOut:
    n = horizon or row.horizon
    paths = row.paths
    stored = _levels(row)
    wanted = [stored[q] for q in stored if not levels or any(math.isclose(q, w) for w in levels)]
    return ForecastOut(
        series_key=row.series_key, kind=row.kind, offer_key=row.offer_key,
        workload_id=row.workload_id, provider=offer.provider if offer else None,
        region=offer.region if offer else None, gpu_model=offer.gpu_model if offer else None,
        spot=offer.spot if offer else None, created_at=row.created_at, origin=row.origin, step=row.step,
        horizon=n, model=row.model, fallback=row.fallback, fallback_reason=row.fallback_reason,
        last_observed=paths.get("last"), timestamps=paths["timestamps"][:n], point=paths["point"][:n],
        quantiles={k: paths["quantiles"][k][:n] for k in wanted},
        scenarios=[p[:n] for p in paths["scenarios"]] if scenarios else None, backtest=_brief(row.backtest),
        skill=_skill(paths.get("skill")),
    )


def _skill(stored: Any) -> SkillOut | None:
    """The stored skill report, briefly (None when absent or not in the expected shape)."""
    if not isinstance(stored, dict):
        return None
    try:
        return SkillOut(
            has_skill=bool(stored["has_skill"]), reason=str(stored["reason"]), rule=str(stored["rule"]),
            n_origins=len(stored.get("origins") or []),
            steps=[StepSkillOut.model_validate(step) for step in stored.get("steps") or []],
            backtest_coverage=stored.get("backtest_coverage"), interval_scale=float(stored.get("interval_scale") or 1.0),
        )
    except (KeyError, TypeError, ValueError):
        return None


@router.get("", operation_id="list_forecasts", response_model=Page[ForecastOut])
def list_forecasts(
    principal: Viewer,
    session: SessionDep,
    page: PageDep,
    series: SeriesKeys = [],  # noqa: B006 - FastAPI reads list defaults per request
    kind: Annotated[Literal["price", "demand"] | None, Query()] = None,
    provider: Names = [],  # noqa: B006
    gpu_model: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    region: Names = [],  # noqa: B006
    spot: Annotated[bool | None, Query()] = None,
    horizon: Annotated[int | None, Query(ge=1, le=24 * 14, description="Steps to return (<= stored).")] = None,
    quantiles: Levels = [],  # noqa: B006
    scenarios: Annotated[bool, Query(description="Include the joint scenario paths.")] = False,
) -> Page[ForecastOut]:
    """The newest stored forecast of each matching series: by key, or price series by offer filters."""
    filters = store.ForecastFilter(series_keys=series, kind=kind, providers=provider, gpu_model=gpu_model,
                                   regions=region, spot=spot)
    rows, total = store.list_latest(session, organization_id=principal.organization_id, filters=filters,
                                    limit=page.limit, offset=page.offset)
    if series:
        found = {r.series_key for r, _ in rows}
        missing = [k for k in series if k not in found]
        if missing and total <= page.offset + page.limit:
            raise NotFound(f"forecast series {missing[0]} not found")
    for row, _ in rows:
        if horizon is not None and horizon > row.horizon:
            raise InvalidInput(f"horizon {horizon} exceeds the stored horizon {row.horizon} of {row.series_key}",
                          field="horizon")
        levels = _levels(row)
        for q in quantiles:
            if not any(math.isclose(q, have) for have in levels):
                raise InvalidInput(f"quantile {q:g} is not stored for {row.series_key}; stored levels: "
                              f"{', '.join(f'{v:g}' for v in sorted(levels))}", field="quantiles")
    items = [_out(r, o, horizon=horizon, levels=quantiles, scenarios=scenarios) for r, o in rows]
    return Page[ForecastOut](items=items, total=total, limit=page.limit, offset=page.offset)


def _version(v: ForecastModelVersion) -> VersionOut:
    return VersionOut(id=v.id, model=v.model, trained_at=v.trained_at, is_champion=v.is_champion,
                      decision=v.decision, metrics=v.metrics)


@router.post("/refresh", operation_id="refresh_forecasts", status_code=202, response_model=ForecastJobAccepted)
def refresh_forecasts(body: RefreshIn, request: Request, ctx: CtxDep, principal: Editor) -> JSONResponse:
    """Queue a forecast job: price series (market data) or your organization's demand."""
    job = submit_forecast(ctx, kind=body.kind, organization_id=principal.organization_id,
                          actor=principal.actor, full_refit=body.full_refit)
    with ctx.db.session() as session:
        audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                     action="forecast.refresh", resource_type="job", resource_id=job.id,
                     detail={"kind": body.kind, "full_refit": body.full_refit})
    out = ForecastJobAccepted(job_id=job.id, status="queued", kind=body.kind, full_refit=body.full_refit,
                              websocket_url=job_ws_url(request, ctx, job.id), status_url=f"/jobs/{job.id}")
    return JSONResponse(out.model_dump(), status_code=202, headers={"Location": f"/jobs/{job.id}"})


@router.post("/usage", operation_id="record_usage", response_model=UsageStored)
def record_usage(body: UsageIn, principal: Editor, session: SessionDep) -> UsageStored:
    """Record GPU-hours per workload and hour (the demand history); reposting an hour replaces it.

    With ``gpus_at_end`` and ``gpus_started`` the demand forecast can also use the scheduler's
    state at each hour's end (models ``last_state`` and ``state_arrivals``)."""
    n = store.record_usage(session, organization_id=principal.organization_id, source="api",
                           points=[store.UsageReading(p.workload_id, p.hour, p.gpu_hours, p.gpus_at_end,
                                                      p.gpus_started) for p in body.points])
    return UsageStored(stored=n)


def _owned_policy(session: Any, principal: Any, policy_id: str) -> None:
    if policy_store.get(session, organization_id=principal.organization_id, policy_id=policy_id) is None:
        raise NotFound(f"policy {policy_id} not found")


def _opt_in_out(row: DemandPolicy) -> DemandPolicyOut:
    return DemandPolicyOut(policy_id=row.policy_id, quantile=row.quantile, horizon_hours=row.horizon_hours,
                           created_at=row.created_at)


@router.get("/demand-policies/{policy_id}", operation_id="get_demand_policy", response_model=DemandPolicyOut)
def get_demand_policy(policy_id: PolicyId, principal: Viewer, session: SessionDep) -> DemandPolicyOut:
    _owned_policy(session, principal, policy_id)
    row = store.demand_policy(session, organization_id=principal.organization_id, policy_id=policy_id)
    if row is None:
        raise NotFound(f"policy {policy_id} has not opted in to demand forecasts")
    return _opt_in_out(row)


@router.post("/demand-policies/{policy_id}", operation_id="set_demand_policy", response_model=DemandPolicyOut)
def set_demand_policy(
    policy_id: PolicyId,
    principal: Editor,
    ctx: CtxDep,
    session: SessionDep,
    quantile: Annotated[float, Query(gt=0, lt=1, description="Upper quantile used as the GPU requirement.")] = 0.9,
    horizon_hours: Annotated[int, Query(ge=1, le=24 * 14, description="Hours ahead the requirement covers.")] = 24,
) -> DemandPolicyOut:
    """Opt a policy in: its scheduled runs size each workload by the demand forecast's upper quantile."""
    _owned_policy(session, principal, policy_id)
    levels = ctx.settings.forecast_quantiles
    if not any(math.isclose(quantile, q) for q in levels):
        raise InvalidInput(f"quantile {quantile:g} is not a stored level; choose one of "
                      f"{', '.join(f'{q:g}' for q in sorted(levels))}", field="quantile")
    if horizon_hours > ctx.settings.forecast_horizon_hours:
        raise InvalidInput(f"horizon_hours {horizon_hours} exceeds the forecast horizon "
                      f"{ctx.settings.forecast_horizon_hours}", field="horizon_hours")
    row = store.set_demand_policy(session, organization_id=principal.organization_id, policy_id=policy_id,
                                  quantile=quantile, horizon_hours=horizon_hours)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="policy.demand_forecast", resource_type="policy", resource_id=policy_id,
                 detail={"quantile": quantile, "horizon_hours": horizon_hours})
    return _opt_in_out(row)


@router.delete("/demand-policies/{policy_id}", operation_id="clear_demand_policy", response_model=DemandPolicyOut)
def clear_demand_policy(policy_id: PolicyId, principal: Editor, session: SessionDep) -> DemandPolicyOut:
    """Opt a policy out again (its stated GPU requirements apply)."""
    _owned_policy(session, principal, policy_id)
    row = store.demand_policy(session, organization_id=principal.organization_id, policy_id=policy_id)
    if row is None:
        raise NotFound(f"policy {policy_id} has not opted in to demand forecasts")
    out = _opt_in_out(row)
    store.clear_demand_policy(session, organization_id=principal.organization_id, policy_id=policy_id)
    return out


@router.get("/{series:path}/backtest", operation_id="get_forecast_backtest", response_model=BacktestOut)
def get_backtest(
    series: Annotated[str, Path(min_length=1, max_length=300)], principal: Viewer, session: SessionDep
) -> BacktestOut:
    """How much to trust a series' forecast: its backtest and every trained model version."""
    row = store.latest(session, series_key=series, organization_id=principal.organization_id)
    if row is None:
        raise NotFound(f"forecast series {series} not found")
    versions = store.versions(session, scope=row.scope, series_key=series)
    champion = next((v for v in versions if v.is_champion), None)
    return BacktestOut(
        series_key=row.series_key, kind=row.kind, model=row.model, fallback_reason=row.fallback_reason,
        origin=row.origin, created_at=row.created_at, backtest=row.backtest,
        champion=_version(champion) if champion else None, versions=[_version(v) for v in versions],
    )
