"""Demand forecasts in scheduled re-optimization, and usage fed back from adopted allocations.

A policy that opted in (``demand_policies``) has each workload's GPU requirement for the run set to
the stored demand forecast's upper quantile, maximized over the next ``horizon_hours`` and rounded up:
being short costs a missed workload, being long only idle GPUs. Workloads without a fresh forecast
keep the requirement the policy states.

A forecast is read from the current hour on, not from its origin: usage that stopped arriving
leaves the hours between its last reading and now as a gap, and a stale forecast's first steps are
hours that have already passed. A gap is never read as zero demand: a forecast whose origin lies more
than ``CLOUDARB_DEMAND_MAX_GAP_HOURS`` in the past is not applied, with the reason in the run's
summary (the policy's stated requirement holds); one whose remaining path is shorter than the
horizon is used for the hours it still covers. After each policy run the allocation in force (adopted or
kept) is recorded as that hour's usage, so a policy's own history feeds its demand forecast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from cloudarb.config import Settings
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store
from cloudarb.schemas import OptimizeRequest


def quantile_path(paths: dict[str, Any], quantile: float) -> list[float] | None:
    """The stored path of a quantile level, matched to the stored key (levels are stored as ``f"{q:g}"``)."""
    for key, path in paths.get("quantiles", {}).items():
        if math.isclose(float(key), quantile, abs_tol=1e-9):
            return [float(v) for v in path]
    return None


def apply_demand_bounds(
    session: Session, settings: Settings, *, organization_id: str, policy_id: str, request: OptimizeRequest
) -> tuple[OptimizeRequest, dict[str, Any]]:
    """The request with forecast GPU requirements, and what was applied (for the stored summary)."""
    opt_in = store.demand_policy(session, organization_id=organization_id, policy_id=policy_id)
    if opt_in is None:
        return request, {}
    not_before = utcnow() - timedelta(seconds=settings.forecast_max_age_s)
    stored = store.latest_demand(session, organization_id=organization_id,
                                 workload_ids=[w.id for w in request.workloads], not_before=not_before)
    applied: dict[str, Any] = {}
    workloads = []
    now = utcnow()
    for w in request.workloads:
        f = stored.get(w.id)
        path = quantile_path(f.paths, opt_in.quantile) if f is not None else None
        if f is None or not path:
            workloads.append(w)
            applied[w.id] = {"applied": False, "reason": "no fresh demand forecast at this quantile"}
            continue
        skip = max(0, int((now - f.origin) / timedelta(hours=1)))
        if skip > settings.demand_max_gap_hours:
            workloads.append(w)
            applied[w.id] = {"applied": False, "reason": f"usage data ends {skip} h before now (a gap longer "
                             f"than {settings.demand_max_gap_hours} h is not zero demand); the stated "
                             "requirement holds", "gap_hours": skip}
            continue
        window = path[skip: skip + max(1, opt_in.horizon_hours)]
        if not window or not all(math.isfinite(v) for v in window):
            workloads.append(w)
            applied[w.id] = {"applied": False, "reason": "the demand forecast does not reach the current hour",
                             "gap_hours": skip}
            continue
        upper = max(0.0, max(window))
        gpus = max(1, math.ceil(upper - 1e-9))
        gpus = math.ceil(gpus / w.gpus_per_node) * w.gpus_per_node
        update: dict[str, Any] = {"gpus_min": gpus}
        if w.gpus_max is not None and w.gpus_max < gpus:
            update["gpus_max"] = gpus
        workloads.append(w.model_copy(update=update))
        applied[w.id] = {"applied": True, "quantile": opt_in.quantile, "horizon_hours": opt_in.horizon_hours,
                         "upper": round(upper, 4), "gpus_min": gpus, "stated_gpus_min": w.gpus_min,
                         "forecast_origin": f.origin.isoformat() if f is not None else None}
    return request.model_copy(update={"workloads": workloads}), applied


def record_allocation_usage(
    session: Session, *, organization_id: str, lines: Sequence[tuple[str, int]], workload_ids: Sequence[str]
) -> int:
    """Record this hour's GPUs per workload of the allocation in force (0 for workloads it leaves out)."""
    gpus: dict[str, float] = {wid: 0.0 for wid in workload_ids}
    for wid, n in lines:
        gpus[wid] = gpus.get(wid, 0.0) + n
    now = utcnow()
    return store.record_usage(session, organization_id=organization_id,
                              points=[store.UsageReading(wid, now, g, gpus_at_end=g) for wid, g in gpus.items()],
                              source="policy")
