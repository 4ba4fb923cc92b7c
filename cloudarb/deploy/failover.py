"""Failover: a line whose offer answered no capacity, quota or gone moves to the next best offer.

The refused offer is blocked for ``deploy_block_offer_s`` (for every deployment: a provider out of a
machine type is out for everyone). For a deployment of an optimization, the line's workload is solved
again by the optimizer over the current offers, without blocked or already tried offers, under what is
left of the fleet's hourly budget (the stored request's constraints; fleet-wide shares are left out, a
one-instance re-solve cannot meet them); its best line is the next try. A direct deployment of one
offer tries the cheapest offer of the same GPU model and count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from cloudarb.db.models import OptimizationRequest
from cloudarb.db.models_deploy import BlockedOffer, DeployInstance, Deployment
from cloudarb.deploy import states as st
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.providers import registry
from cloudarb.deploy.schemas import PlannedLine
from cloudarb.optimize.problem import build_problem, offer_filter
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage import offers as offer_store
from cloudarb.storage.offers import OfferFields, OfferFilter

RESOLVE_TIME_LIMIT_S = 5.0


@dataclass(frozen=True)
class Choice:
    """The offer the next attempt of a line uses."""

    offer_key: str
    provider: str
    region: str
    zone: str | None
    instance_type: str
    gpu_model: str
    gpus_per_instance: int
    spot: bool
    price_per_hour: float

    @staticmethod
    def of(row: OfferFields) -> Choice:
        return Choice(row.offer_key, row.provider, row.region, row.zone or None, row.instance_type, row.gpu_model,
                      row.gpu_count, row.spot, row.price_per_hour)


def block(env: DeployEnv, offer_key: str, reason: str) -> None:
    until = env.clock() + timedelta(seconds=env.settings.deploy_block_offer_s)
    with env.db.session() as session:
        row = session.get(BlockedOffer, offer_key)
        if row is None:
            session.add(BlockedOffer(offer_key=offer_key, until=until, reason=reason, created_at=env.clock()))
        else:
            row.until, row.reason = until, reason


def blocked(env: DeployEnv, now: datetime) -> set[str]:
    with env.db.session() as session:
        return set(session.scalars(select(BlockedOffer.offer_key).where(BlockedOffer.until > now)))


def next_offer(env: DeployEnv, deployment: Deployment, line: PlannedLine, tried: set[str]) -> Choice | None:
    """The next best offer for one instance of ``line``, or None when nothing else fits."""
    exclude = tried | blocked(env, env.clock())
    deployable = set(registry.keys())
    with env.db.session() as session:
        opt = session.get(OptimizationRequest, deployment.optimization_id) if deployment.optimization_id else None
        if opt is not None:
            return _resolve(env, session, deployment, line, OptimizeRequest.model_validate(opt.request),
                            exclude, deployable)
        rows = offer_store.offers_for_problem(session, filters=OfferFilter(
            gpu_models=[line.gpu_model], min_gpus=line.gpus_per_instance, spot=line.spot))
    fits = [r for r in rows if r.offer_key not in exclude and r.provider in deployable
            and r.gpu_count == line.gpus_per_instance]
    return Choice.of(min(fits, key=lambda r: (r.price_per_hour, r.offer_key))) if fits else None


def _resolve(env: DeployEnv, session: object, deployment: Deployment, line: PlannedLine, req: OptimizeRequest,
             exclude: set[str], deployable: set[str]) -> Choice | None:
    import optimizer
    from optimizer.schemas import SolveConfig

    workload = next((w for w in req.workloads if w.id == line.workload_id), None)
    if workload is None:
        return None
    gpus = line.gpus_per_instance
    one = workload.model_copy(update={"gpus_min": gpus, "gpus_max": gpus, "elastic": True})
    c = req.constraints
    budget = c.budget_per_hour
    if budget is not None:
        budget = max(0.0, budget - _other_spend(env, deployment.id))
    mini = req.model_copy(update={
        "workloads": [one],
        # Every constraint of the request carries over (a new one too) except the fleet-wide shares.
        "constraints": c.model_copy(update={"budget_per_hour": budget, "max_provider_share": None,
                                            "max_region_share": None}),
        "pareto_points": None,
    })
    with env.db.session() as s:
        rows = [r for r in offer_store.offers_for_problem(s, filters=offer_filter(mini, env.settings))
                if r.offer_key not in exclude and r.provider in deployable]
    if not rows:
        return None
    problem = build_problem(mini, rows, settings=env.settings)
    solution = optimizer.solve(problem, SolveConfig(backend=req.backend, time_limit_s=RESOLVE_TIME_LIMIT_S))
    by_key = {r.offer_key: r for r in rows}
    for alloc in sorted(solution.allocations, key=lambda a: a.hourly_cost / max(1, a.instances)):
        row = by_key.get(alloc.offer_id)
        if row is not None:
            return Choice.of(row)
    return None


def _other_spend(env: DeployEnv, deployment_id: str) -> float:
    with env.db.session() as session:
        rates = session.scalars(select(DeployInstance.price_per_hour).where(
            DeployInstance.deployment_id == deployment_id, DeployInstance.state.in_(st.UP)))
        return float(sum(rates))
