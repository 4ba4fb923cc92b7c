"""What our own fleet says about spot capacity: interruptions, exposure and launch outcomes per pool.

A pool is (provider, instance type, region, zone): what an offer names and what a deploy row copies
from the offer it launched. Over a window (``forecast_fleet_window_days``) the deploy stage's rows
give, per pool:

* exposure hours: the time each spot instance existed at the provider (from its billing start to its
  interruption, its end or now), clipped to the window;
* interruptions: rows whose provider ended them without our asking (``interrupted_at`` in the window,
  set by the reconciler and by the boot wait);
* launches and refusals: the deploy attempts on the pool (each joined to its instance row), an attempt
  that made an instance is a launch, one answered ``no_capacity`` a refusal (quota refusals are kept
  apart: they say nothing about the provider's capacity);
* time to running: the mean seconds from launch to running.

Evidence is pooled over every organization of the installation: capacity is the provider's, not a
tenant's. Nothing here imports the forecasting library, so the API can show the evidence; the update
itself is conjugate and closed-form (:func:`posterior_rate`, :func:`posterior_launch`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import DeployAttempt, DeployInstance

PoolKey = tuple[str, str, str, str]
"""(provider, instance type, region, zone; '' when the offer names no zone)."""

#: Attempt outcomes that say the provider refused for capacity, and those that say nothing about it.
REFUSED = frozenset({"no_capacity"})
QUOTA = frozenset({"quota_exceeded"})
UNINFORMATIVE = frozenset({"offer_gone", "auth_failed", "provider_rate_limited", "invalid_launch", "create_unknown",
                           "provider_unavailable", "listing_incomplete", "unknown_provider", "provision_error",
                           "no_alternative", "requested", "creating"})


@dataclass(frozen=True)
class FleetEvidence:
    """One pool's record over the window."""

    interruptions: int = 0
    exposure_hours: float = 0.0
    launches: int = 0
    refusals: int = 0
    quota_refusals: int = 0
    instances: int = 0
    mean_time_to_running_s: float | None = None

    @property
    def observed_rate(self) -> float | None:
        """Interruptions per exposure hour (None without exposure)."""
        return self.interruptions / self.exposure_hours if self.exposure_hours > 0 else None

    def describe(self) -> str:
        parts = []
        if self.exposure_hours > 0:
            parts.append(f"{self.interruptions} interruption{'s' if self.interruptions != 1 else ''} "
                         f"in {self.exposure_hours:.1f} h")
        if self.launches or self.refusals:
            parts.append(f"{self.launches} of {self.launches + self.refusals} launches got capacity")
        return "our fleet: " + ", ".join(parts) if parts else ""


def pool_key(provider: str, instance_type: str, region: str, zone: str | None) -> PoolKey:
    return (provider, instance_type, region, zone or "")


def fleet_evidence(session: Session, *, now: datetime, window: timedelta,
                   pools: Iterable[PoolKey] | None = None) -> dict[PoolKey, FleetEvidence]:
    """Spot evidence per pool over ``[now - window, now]`` (only ``pools`` when given)."""
    since = now - window
    wanted = set(pools) if pools is not None else None
    acc: dict[PoolKey, dict[str, float]] = {}

    def slot(key: PoolKey) -> dict[str, float] | None:
        if wanted is not None and key not in wanted:
            return None
        return acc.setdefault(key, {"d": 0, "h": 0.0, "ok": 0, "no": 0, "quota": 0, "n": 0, "ttr": 0.0, "ttr_n": 0})

    instances = session.execute(select(
        DeployInstance.provider, DeployInstance.instance_type, DeployInstance.region, DeployInstance.zone,
        DeployInstance.billing_started_at, DeployInstance.interrupted_at, DeployInstance.billing_stopped_at,
        DeployInstance.ended_at, DeployInstance.launched_at, DeployInstance.running_at,
    ).where(DeployInstance.spot.is_(True), DeployInstance.billing_started_at.is_not(None),
            DeployInstance.billing_started_at <= now,
            or_(DeployInstance.billing_stopped_at.is_(None), DeployInstance.billing_stopped_at >= since,
                DeployInstance.interrupted_at >= since)))
    for provider, itype, region, zone, started, interrupted, stopped, ended, launched, running in instances:
        s = slot(pool_key(provider, itype, region, zone))
        if s is None or started is None:
            continue
        end = interrupted or stopped or ended or now
        hours = (min(end, now) - max(started, since)).total_seconds() / 3600.0
        s["h"] += max(0.0, hours)
        s["n"] += 1
        if interrupted is not None and since <= interrupted <= now:
            s["d"] += 1
        if launched is not None and running is not None and running >= launched:
            s["ttr"] += (running - launched).total_seconds()
            s["ttr_n"] += 1
    attempts = session.execute(select(
        DeployInstance.provider, DeployInstance.instance_type, DeployInstance.region, DeployInstance.zone,
        DeployAttempt.outcome,
    ).join(DeployInstance, and_(DeployInstance.deployment_id == DeployAttempt.deployment_id,
                                DeployInstance.line_index == DeployAttempt.line_index,
                                DeployInstance.replica == DeployAttempt.replica,
                                DeployInstance.attempt == DeployAttempt.attempt))
        .where(DeployInstance.spot.is_(True), DeployAttempt.created_at >= since, DeployAttempt.created_at <= now))
    for provider, itype, region, zone, outcome in attempts:
        s = slot(pool_key(provider, itype, region, zone))
        if s is None or outcome in UNINFORMATIVE:
            continue
        s["no" if outcome in REFUSED else "quota" if outcome in QUOTA else "ok"] += 1
    return {key: FleetEvidence(
        interruptions=int(s["d"]), exposure_hours=float(s["h"]), launches=int(s["ok"]), refusals=int(s["no"]),
        quota_refusals=int(s["quota"]), instances=int(s["n"]),
        mean_time_to_running_s=s["ttr"] / s["ttr_n"] if s["ttr_n"] else None) for key, s in acc.items()}


def posterior_rate(prior_mean: float, prior_shape: float, evidence: FleetEvidence | None) -> float:
    """Mean of the Gamma posterior: prior ``Gamma(shape, shape / mean)`` plus the pool's interruptions
    as Poisson counts over its exposure hours."""
    if evidence is None or evidence.exposure_hours <= 0:
        return prior_mean
    rate = prior_shape / max(prior_mean, 1e-12)
    return (prior_shape + evidence.interruptions) / (rate + evidence.exposure_hours)


def posterior_launch(prior: tuple[float, float] | None, evidence: FleetEvidence | None) -> float | None:
    """Share of launches that get capacity: the prior ``Beta(c p, c (1 - p))`` (``prior`` = (p, c), from
    the traces where they observed the instance type; else a uniform ``Beta(1, 1)``) updated with the
    pool's launches and capacity refusals. None with neither a prior nor evidence."""
    tries = 0 if evidence is None else evidence.launches + evidence.refusals
    if prior is None and tries == 0:
        return None
    p, c = prior if prior is not None else (0.5, 2.0)
    ok = 0 if evidence is None else evidence.launches
    return (c * p + ok) / (c + tries)
