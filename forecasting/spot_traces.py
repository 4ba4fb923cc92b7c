"""Spot evidence: observed preemptions and refused launches, and the advisor prior calibrated on them.

Data: the "Can't Be Late" traces (NSDI'24; ``../shared/data/risk/spot_traces``): a p3.2xlarge
V100 spot instance kept alive by relaunching in four AWS zones (``preemption``, 1 = alive at
a 32 s tick, 177 h in April 2023), and whether a p3.2xlarge spot launch succeeded at each
195 s tick in nine zones (``availability``, 1,092 h from February 2023).

Preemptions. An interruption is an alive tick followed by a dead one; exposure is the alive
time. Per zone the rate is Gamma-Poisson: prior ``Gamma(shape=a, rate=a / mu)`` with mean
``mu = kappa x`` the advisor bucket's rate (:func:`forecasting.risk.bucket_rate`), so
``kappa`` converts the advisor's monthly buckets to what a relaunching user sees and ``a``
is the prior's weight (``a / mu`` pseudo-hours of exposure). Both are chosen on held-out
zones: ``kappa`` is the pooled rate of the training zones over their advisor rate, ``a``
maximises the leave-one-zone-out negative-binomial predictive likelihood of each held-out
zone's count. On the shared traces the advisor's ">20%" bucket (4.9e-4 per hour) is
about 1,000 times too low, and a few hundred instance-hours already outweigh any
prior built from it; the fitted figures are in ``forecasting/README.md``.

Launch availability. The share of launch attempts that succeed, per zone. Ticks are
strongly autocorrelated (capacity comes and goes in runs of hours), so a zone's share is
worth far fewer than its thousands of ticks: the predictive interval of a future period's
share is ``Beta(c p, c (1 - p))``, with the concentration ``c`` chosen by the held-out
likelihood of each zone's second half given its first (leave one zone out).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from forecasting.errors import DataError

#: Prior weights (Gamma shapes) tried for the interruption rate, and Beta concentrations for launches.
SHAPES: tuple[float, ...] = tuple(float(x) for x in np.round(np.logspace(-1, 3, 33), 6))
CONCENTRATIONS: tuple[float, ...] = tuple(float(x) for x in np.round(np.logspace(0, 4, 33), 6))
#: What the traces' ``resource`` names are, in instance types.
RESOURCES = {"v100_1": "p3.2xlarge"}


@dataclass(frozen=True)
class SpotTrace:
    """One trace: 0/1 per tick (``preemption``: alive; ``availability``: a launch succeeded)."""

    kind: str
    zone: str
    instance_type: str
    gap_seconds: float
    data: np.ndarray

    @property
    def region(self) -> str:
        return self.zone.rstrip("abcdefghijklmnopqrstuvwxyz")

    def part(self, start: float, end: float) -> SpotTrace:
        """The ticks from fraction ``start`` to ``end`` of the trace (a time split)."""
        n = self.data.shape[0]
        return SpotTrace(self.kind, self.zone, self.instance_type, self.gap_seconds,
                         self.data[int(start * n) : int(end * n)])

    def interruptions(self) -> tuple[int, float]:
        """(alive -> dead transitions, alive hours)."""
        a = self.data
        return int(np.sum((a[:-1] == 1) & (a[1:] == 0))), float(a.sum() * self.gap_seconds / 3600.0)

    def launch_share(self) -> float:
        return float(self.data.mean()) if self.data.size else float("nan")


def load_spot_traces(root: str | Path) -> list[SpotTrace]:
    """Every trace listed in ``root/index.csv`` (paths there are relative to ``root``'s parent)."""
    root = Path(root)
    try:
        index = pd.read_csv(root / "index.csv")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the trace index: {exc}", source=str(root)) from exc
    need = {"file", "trace_kind", "zone", "resource", "gap_seconds"}
    if need - set(index.columns):
        raise DataError(f"index lacks columns {sorted(need - set(index.columns))}", source=str(root))
    out = []
    for row in index.itertuples():
        path = root.parent / str(row.file)
        try:
            raw = json.loads(path.read_text())
            data = np.asarray(raw["data"], dtype=float)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"unreadable trace: {exc}", source=str(path)) from exc
        out.append(SpotTrace(str(row.trace_kind), str(row.zone), RESOURCES.get(str(row.resource), str(row.resource)),
                             float(row.gap_seconds), data))
    return out


def nb_logpmf(k: float, shape: float, rate: float, exposure: float) -> float:
    """log P(k events in ``exposure``) when the rate is Gamma(shape, rate): negative binomial."""
    p = rate / (rate + exposure)
    return float(math.lgamma(k + shape) - math.lgamma(shape) - math.lgamma(k + 1)
                 + shape * math.log(p) + k * math.log1p(-p))


def nb_quantiles(shape: float, rate: float, exposure: float, qs: Sequence[float]) -> list[float]:
    """Quantiles of the count in ``exposure`` under a Gamma(shape, rate) rate."""
    from scipy import stats

    p = rate / (rate + exposure)
    return [float(stats.nbinom.ppf(q, shape, p)) for q in qs]


class ZoneFit(BaseModel):
    """Held-out scoring of one zone (left out of the fit of kappa and the prior weight)."""

    zone: str
    interruptions: int
    exposure_hours: float
    observed_rate: float
    predicted_rate: float = Field(description="kappa x advisor rate, kappa from the other zones.")
    advisor_rate: float = Field(description="The uncalibrated advisor bucket mean.")
    lower: float = Field(description="10% predictive quantile of the zone's observed rate.")
    upper: float = Field(description="90% predictive quantile.")
    inside: bool


class RateCalibration(BaseModel):
    """Advisor-to-observed scale and prior weight of the interruption rate, with held-out figures."""

    kappa: float = Field(description="Observed rate / advisor bucket rate, pooled over all zones.")
    shape: float = Field(description="Gamma prior shape (prior weight), chosen by held-out likelihood.")
    prior_hours: float = Field(description="The prior's weight in instance-hours at the pooled rate.")
    held_out: list[ZoneFit]
    held_out_loglik: float = Field(description="Leave-one-zone-out predictive log likelihood at the chosen shape.")
    advisor_loglik: float = Field(description="The same for the uncalibrated advisor rate (kappa 1, same shape).")
    time_split_inside: int = Field(
        description="Zones whose second-half rate fell in the 10-90% interval from their first half and the other "
                    "zones' kappa.")
    time_split_zones: int


def _kappa(rows: Sequence[tuple[int, float, float]]) -> float:
    """Pooled observed/advisor ratio of (interruptions, hours, advisor rate) rows."""
    return sum(d for d, _, _ in rows) / max(sum(e * r for _, e, r in rows), 1e-12)


def calibrate_rates(traces: Sequence[SpotTrace], advisor_rate: dict[tuple[str, str], float]) -> RateCalibration:
    """Fit kappa and the prior weight on the preemption traces, leave one zone out (module docstring).

    ``advisor_rate[(instance_type, region)]`` is the advisor's hourly rate for the trace's
    instance type and region (e.g. :meth:`forecasting.risk.RiskModel.advisor_rate`).
    """
    rows = []
    for t in traces:
        if t.kind != "preemption":
            continue
        d, e = t.interruptions()
        rows.append((t, d, e, advisor_rate[(t.instance_type, t.region)]))
    if len(rows) < 2:
        raise DataError("need preemption traces from at least two zones", source="spot_traces")

    def loo_loglik(shape: float, scale_free: bool) -> float:
        total = 0.0
        for i, (_, d, e, r) in enumerate(rows):
            kappa = 1.0 if scale_free else _kappa([(d2, e2, r2) for j, (_, d2, e2, r2) in enumerate(rows) if j != i])
            mu = kappa * r
            total += nb_logpmf(d, shape, shape / mu, e)
        return total

    shape = max(SHAPES, key=lambda a: loo_loglik(a, False))
    held = []
    for i, (t, d, e, r) in enumerate(rows):
        mu = _kappa([(d2, e2, r2) for j, (_, d2, e2, r2) in enumerate(rows) if j != i]) * r
        lo, hi = nb_quantiles(shape, shape / mu, e, (0.1, 0.9))
        held.append(ZoneFit(zone=t.zone, interruptions=d, exposure_hours=round(e, 2), observed_rate=d / e,
                            predicted_rate=mu, advisor_rate=r, lower=lo / e, upper=hi / e, inside=lo <= d <= hi))
    kappa = _kappa([(d, e, r) for _, d, e, r in rows])
    inside = 0
    for i, (t, _, _, r) in enumerate(rows):
        d1, e1 = t.part(0.0, 0.5).interruptions()
        d2, e2 = t.part(0.5, 1.0).interruptions()
        mu = _kappa([(d2_, e2_, r2) for j, (_, d2_, e2_, r2) in enumerate(rows) if j != i]) * r
        lo, hi = nb_quantiles(shape + d1, shape / mu + e1, e2, (0.1, 0.9))
        inside += lo <= d2 <= hi
    return RateCalibration(kappa=kappa, shape=shape, prior_hours=shape / (kappa * float(np.mean([r for *_, r in rows]))),
                           held_out=held, held_out_loglik=loo_loglik(shape, False),
                           advisor_loglik=loo_loglik(shape, True), time_split_inside=inside,
                           time_split_zones=len(rows))


class LaunchEstimate(BaseModel):
    """Share of spot launch requests that succeed, with a 10-90% interval for a future period."""

    zone: str | None
    instance_type: str
    success: float = Field(ge=0, le=1)
    lower: float = Field(ge=0, le=1)
    upper: float = Field(ge=0, le=1)
    source: str = Field(description="'zone trace' or 'pooled traces'.")


class LaunchCalibration(BaseModel):
    """Concentration of the launch-share predictive, and its held-out figures."""

    concentration: float = Field(description="Beta concentration c: a future period's share ~ Beta(c p, c (1 - p)).")
    held_out_inside: int = Field(description="Zones whose second-half share fell in the 10-90% interval from the first.")
    zones: int
    pooled_success: float
    per_zone: dict[str, float] = Field(description="Zone -> share of launch attempts that succeeded (whole trace).")
    instance_types: list[str] = Field(description="Instance types the traces observed (the pooled share is theirs).")


def _beta_logpdf(x: float, a: float, b: float) -> float:
    x = min(max(x, 1e-4), 1 - 1e-4)
    return float(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x))


def _beta_interval(p: float, c: float) -> tuple[float, float]:
    from scipy import stats

    p = min(max(p, 1e-3), 1 - 1e-3)
    lo, hi = stats.beta.ppf([0.1, 0.9], c * p, c * (1 - p))
    return float(lo), float(hi)


def calibrate_launches(traces: Sequence[SpotTrace]) -> LaunchCalibration:
    """Choose the concentration on first-half -> second-half predictions, leaving each zone out."""
    zones = [t for t in traces if t.kind == "availability"]
    if len(zones) < 2:
        raise DataError("need availability traces from at least two zones", source="spot_traces")
    halves = [(t.part(0.0, 0.5).launch_share(), t.part(0.5, 1.0).launch_share()) for t in zones]

    def best_c(rows: Sequence[tuple[float, float]]) -> float:
        def ll(c: float) -> float:
            return sum(_beta_logpdf(p2, c * min(max(p1, 1e-3), 1 - 1e-3), c * (1 - min(max(p1, 1e-3), 1 - 1e-3)))
                       for p1, p2 in rows)
        return max(CONCENTRATIONS, key=ll)

    inside = 0
    for i, (p1, p2) in enumerate(halves):
        c = best_c([h for j, h in enumerate(halves) if j != i])
        lo, hi = _beta_interval(p1, c)
        inside += lo <= p2 <= hi
    return LaunchCalibration(concentration=best_c(halves), held_out_inside=inside, zones=len(zones),
                             pooled_success=float(np.mean([t.launch_share() for t in zones])),
                             per_zone={t.zone: t.launch_share() for t in zones},
                             instance_types=sorted({t.instance_type for t in zones}))


def launch_estimate(cal: LaunchCalibration, instance_type: str, zone: str | None) -> LaunchEstimate | None:
    """The zone's share if it was traced, else the pooled share; interval from the calibrated Beta.

    None for an instance type the traces did not observe: launch capacity is per instance type.
    """
    if instance_type not in cal.instance_types:
        return None
    if zone is not None and zone in cal.per_zone:
        p, source = cal.per_zone[zone], "zone trace"
    else:
        p, source = cal.pooled_success, "pooled traces"
    lo, hi = _beta_interval(p, cal.concentration)
    return LaunchEstimate(zone=zone, instance_type=instance_type, success=p, lower=lo, upper=hi, source=source)
