"""Interruption risk of spot capacity: per-offer interruption rate per hour, with an interval.

Source: AWS Spot Instance Advisor buckets (share of spot capacity of an instance type and
region reclaimed over the trailing month: <5%, 5-10%, 10-15%, 15-20%, >20%).

Assumptions, stated once:

* A bucket's frequency ``p`` is the probability that an instance kept running for a month
  (730 h) is interrupted, and interruptions arrive as a Poisson process with constant
  hazard, so ``rate = -ln(1 - p) / 730`` per hour.
* Within a bucket ``p`` is uniform; the open ">20%" bucket is taken as 20-40%.
* The table's buckets are the truth for the (instance type, region) rows it holds (the
  latest snapshot wins); elsewhere a multinomial logistic regression on instance family,
  accelerator generation, size, region, savings and OS predicts bucket probabilities. Its
  rate is the mixture mean; its interval the mixture's 10%-90% quantiles.
* Observed capacity drops update the rate as Poisson evidence against a Gamma prior fitted
  to the rate's mean and interval (conjugate update), and price volatility scales the rate
  by ``exp(volatility_weight * sigma)`` where sigma is the std of log price changes; that
  weight is a judgement, not a fit (there are no interruption labels for volatile series).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from forecasting.errors import DataError, ForecastingError
from forecasting.spot_traces import (
    LaunchCalibration,
    RateCalibration,
    SpotTrace,
    calibrate_launches,
    calibrate_rates,
    launch_estimate,
)

HOURS_PER_MONTH = 730.0
BUCKET_BOUNDS: tuple[tuple[float, float], ...] = ((0.0, 0.05), (0.05, 0.10), (0.10, 0.15), (0.15, 0.20), (0.20, 0.40))
BUCKET_LABELS = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")
CATEGORICAL = ["family", "vendor_letter", "region", "area", "os"]
NUMERIC = ["generation", "log2_vcpus", "savings_pct", "is_metal"]


def monthly_to_hourly(p: float) -> float:
    """Constant hourly hazard whose monthly interruption probability is ``p``."""
    if not 0.0 <= p < 1.0:
        raise ForecastingError(f"monthly interruption probability must be in [0, 1), got {p}")
    return -math.log1p(-p) / HOURS_PER_MONTH


def bucket_rate(index: int) -> tuple[float, float, float]:
    """(mean, low, high) hourly rate of a bucket, p uniform within its bounds."""
    lo, hi = BUCKET_BOUNDS[index]
    grid = np.linspace(lo, hi, 201)
    rates = -np.log1p(-grid) / HOURS_PER_MONTH
    return float(rates.mean()), monthly_to_hourly(lo), monthly_to_hourly(hi)


def instance_features(instance_type: str, region: str, *, savings_pct: float, vcpus: float, os: str = "Linux") -> dict[str, Any]:
    """Features that carry over to instance types and regions the table does not hold."""
    family, _, size = instance_type.partition(".")
    m = re.match(r"([a-z]+?)(\d+)", family)
    letter, gen = (m.group(1), int(m.group(2))) if m else (family, 0)
    return {
        "family": family, "vendor_letter": letter, "generation": gen, "region": region,
        "area": region.split("-")[0], "os": os, "log2_vcpus": math.log2(max(vcpus, 1.0)),
        "savings_pct": float(savings_pct), "is_metal": float("metal" in size),
    }


def load_spot_advisor(path: str | Path) -> pd.DataFrame:
    """Advisor rows with features, bucket index and the snapshot date."""
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read: {exc}", source=str(path)) from exc
    need = {"snapshot_commit_date", "region", "os", "instance_type", "vcpus", "savings_over_ondemand_pct",
            "interruption_range_index"}
    if need - set(raw.columns):
        raise DataError(f"missing columns {sorted(need - set(raw.columns))}", source=str(path))
    feats = pd.DataFrame([
        instance_features(r.instance_type, r.region, savings_pct=r.savings_over_ondemand_pct, vcpus=r.vcpus, os=r.os)
        for r in raw.itertuples()
    ])
    feats["bucket"] = raw["interruption_range_index"].astype(int)
    feats["instance_type"] = raw["instance_type"]
    feats["snapshot"] = pd.to_datetime(raw["snapshot_commit_date"], utc=True)
    return feats


class RiskEstimate(BaseModel):
    """Interruption rate per hour of one spot offer, with its uncertainty."""

    instance_type: str
    region: str
    rate_per_hour: float = Field(ge=0, description="Expected interruptions per instance-hour.")
    lower: float = Field(ge=0, description="10% quantile of the rate.")
    upper: float = Field(ge=0, description="90% quantile of the rate.")
    bucket_probabilities: list[float] = Field(description="P(bucket) for <5%, 5-10%, 10-15%, 15-20%, >20%.")
    source: str = Field(description="'table' (advisor row) or 'model' (predicted), '+drops'/'+volatility' if adjusted; "
                        "'+traces' when calibrated on observed preemptions, '+zone' when the zone's own were used.")
    zone: str | None = Field(default=None, description="Availability zone the estimate is for (None: the region).")
    evidence_hours: float = Field(default=0.0, ge=0, description="Observed instance-hours behind the rate.")
    launch_success: float | None = Field(
        default=None, ge=0, le=1, description="Share of spot launch requests that succeed (None: no trace evidence).")
    launch_lower: float | None = Field(default=None, ge=0, le=1, description="10% quantile of a future period's share.")
    launch_upper: float | None = Field(default=None, ge=0, le=1, description="90% quantile.")


def _mixture_quantiles(probs: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of the rate when p is uniform within each bucket, mixed by ``probs``."""
    grid = np.concatenate([np.linspace(lo, hi, 101) for lo, hi in BUCKET_BOUNDS])
    weights = np.concatenate([np.full(101, w / 101) for w in probs])
    order = np.argsort(grid)
    cdf = np.cumsum(weights[order]) / weights.sum()
    ordered = grid[order]
    return [monthly_to_hourly(float(ordered[min(int(np.searchsorted(cdf, q)), grid.size - 1)])) for q in qs]


@dataclass
class RiskModel:
    """Fitted interruption-risk model: the advisor table plus a generalizing classifier.

    Uncalibrated (``rates is None``), a bucket is read as a monthly interruption share, as
    the advisor documents it. :meth:`calibrate` adds the evidence of observed preemptions
    and launches (:mod:`forecasting.spot_traces`): the advisor's rate times ``kappa`` becomes
    a Gamma prior of the chosen weight, updated per zone with that zone's observations.
    """

    pipeline: Any
    table: pd.DataFrame
    rates: RateCalibration | None = None
    zone_evidence: dict[tuple[str, str], tuple[int, float]] | None = None
    launches: LaunchCalibration | None = None
    table_weight: float = 1.0
    base_weight: float = 0.0
    base_rates: tuple[float, ...] = ()

    def calibrate(self, traces: Sequence[SpotTrace]) -> RiskModel:
        """A copy calibrated on preemption and availability traces (see :mod:`forecasting.spot_traces`)."""
        pre = [t for t in traces if t.kind == "preemption"]
        advisor = {(t.instance_type, t.region): self.advisor_rate(t.instance_type, t.region) for t in pre}
        evidence: dict[tuple[str, str], tuple[int, float]] = {}
        for t in pre:
            d, e = t.interruptions()
            old_d, old_e = evidence.get((t.instance_type, t.zone), (0, 0.0))
            evidence[(t.instance_type, t.zone)] = (old_d + d, old_e + e)
        launches = calibrate_launches(traces) if any(t.kind == "availability" for t in traces) else None
        return RiskModel(pipeline=self.pipeline, table=self.table, rates=calibrate_rates(pre, advisor),
                         zone_evidence=evidence, launches=launches, table_weight=self.table_weight,
                         base_weight=self.base_weight, base_rates=self.base_rates)

    def advisor_rate(self, instance_type: str, region: str, *, savings_pct: float = 60.0, vcpus: float = 8.0,
                     os: str = "Linux") -> float:
        """The advisor's hourly rate (bucket mean; the classifier's mixture where the table has no row)."""
        probs, _ = self._bucket_probs(instance_type, region, savings_pct=savings_pct, vcpus=vcpus, os=os)
        return float(sum(p * bucket_rate(i)[0] for i, p in enumerate(probs)))

    def _bucket_probs(self, instance_type: str, region: str, *, savings_pct: float, vcpus: float,
                      os: str) -> tuple[np.ndarray, str]:
        key = (instance_type, region, os)
        wt, wb = self.table_weight, self.base_weight
        base = np.asarray(self.base_rates, dtype=float) if self.base_rates else np.zeros(len(BUCKET_BOUNDS))
        if key in self.table.index:
            own = np.eye(len(BUCKET_BOUNDS))[int(self.table.loc[key, "bucket"])]
            if wt >= 1.0:
                return own, "table"
            clf = self.predict_proba(self.table.loc[[key]].reset_index())[0]
            return wt * own + wb * base + (1 - wt - wb) * clf, "table+model"
        feats = pd.DataFrame([instance_features(instance_type, region, savings_pct=savings_pct, vcpus=vcpus, os=os)])
        clf = self.predict_proba(feats)[0]
        if wb > 0 and wt < 1.0:
            # the classifier's share of a known row's mixture, renormalised without the row's own bucket
            keep = (1 - wt - wb) / (1 - wt)
            return keep * clf + (1 - keep) * base, "model"
        return clf, "model"

    @classmethod
    def fit(cls, data: pd.DataFrame, *, c: float = 0.1, table_weight: float = 1.0, base_weight: float = 0.0) -> RiskModel:
        """Fit the classifier on all rows; keep the latest bucket per (instance type, region, os).

        Bucket probabilities are ``table_weight x`` a row's own bucket (where the table has the
        row) ``+ base_weight x`` the buckets' shares in ``data`` ``+`` the rest for the
        classifier; the defaults (1, 0) serve a known row's bucket as certain, as before.
        :func:`choose_table_weight` picks both on an older snapshot predicting a newer one.
        """
        if not (0.0 <= table_weight <= 1.0 and 0.0 <= base_weight <= 1.0 and table_weight + base_weight <= 1.0):
            raise ForecastingError("table_weight and base_weight must be in [0, 1] and sum to at most 1")
        pipe = make_pipeline(c=c).fit(data[CATEGORICAL + NUMERIC], data["bucket"])
        latest = data.sort_values("snapshot").groupby(["instance_type", "region", "os"]).tail(1)
        shares = np.bincount(data["bucket"].to_numpy(dtype=int), minlength=len(BUCKET_BOUNDS)) / max(len(data), 1)
        return cls(pipeline=pipe, table=latest.set_index(["instance_type", "region", "os"]), table_weight=table_weight,
                   base_weight=base_weight, base_rates=tuple(float(x) for x in shares))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Bucket probabilities, columns in bucket order (absent classes get 0)."""
        raw = self.pipeline.predict_proba(features[CATEGORICAL + NUMERIC])
        out = np.zeros((raw.shape[0], len(BUCKET_BOUNDS)))
        out[:, self.pipeline.classes_] = raw
        return out

    def estimate(
        self, instance_type: str, region: str, *, savings_pct: float, vcpus: float, os: str = "Linux",
        observed_drops: int = 0, exposure_hours: float = 0.0, price_volatility: float = 0.0,
        volatility_weight: float = 1.0, zone: str | None = None,
    ) -> RiskEstimate:
        """Rate for one offer; table row if known, else the model; then evidence, drops and volatility.

        Calibrated (:meth:`calibrate`), the advisor's rate times ``kappa`` is the mean of a Gamma
        prior of the fitted weight, updated with the zone's traced preemptions (when ``zone``
        was traced) and with ``observed_drops`` in ``exposure_hours`` (the caller's own fleet);
        the launch-success share of the zone (or of all traced zones) is added.
        """
        probs, source = self._bucket_probs(instance_type, region, savings_pct=savings_pct, vcpus=vcpus, os=os)
        mean = float(sum(p * bucket_rate(i)[0] for i, p in enumerate(probs)))
        evidence = 0.0
        if self.rates is not None:
            shape, rate = self.rates.shape, self.rates.shape / max(self.rates.kappa * mean, 1e-12)
            source += "+traces"
            d, e = (self.zone_evidence or {}).get((instance_type, zone or ""), (0, 0.0))
            if e > 0:
                shape, rate, evidence = shape + d, rate + e, e
                source += "+zone"
            if exposure_hours > 0:
                shape, rate, evidence = shape + observed_drops, rate + exposure_hours, evidence + exposure_hours
                source += "+drops"
            mean, lower, upper = _gamma_summary(shape, rate)
        else:
            lower, upper = _mixture_quantiles(probs, (0.1, 0.9))
            if exposure_hours > 0:
                mean, lower, upper = gamma_update(mean, lower, upper, drops=observed_drops, hours=exposure_hours)
                source += "+drops"
                evidence = exposure_hours
        if price_volatility > 0 and volatility_weight > 0:
            f = math.exp(volatility_weight * price_volatility)
            mean, lower, upper = mean * f, lower * f, upper * f
            source += "+volatility"
        launch = launch_estimate(self.launches, instance_type, zone) if self.launches is not None else None
        return RiskEstimate(instance_type=instance_type, region=region, rate_per_hour=mean, lower=lower, upper=upper,
                            bucket_probabilities=[float(p) for p in probs], source=source, zone=zone,
                            evidence_hours=evidence, launch_success=None if launch is None else launch.success,
                            launch_lower=None if launch is None else launch.lower,
                            launch_upper=None if launch is None else launch.upper)


def _gamma_summary(shape: float, rate: float) -> tuple[float, float, float]:
    """Mean and 10% / 90% quantiles of Gamma(shape, rate)."""
    from scipy import stats

    dist = stats.gamma(a=shape, scale=1.0 / rate)
    return float(dist.mean()), float(dist.ppf(0.1)), float(dist.ppf(0.9))


def make_pipeline(*, c: float = 0.1) -> Any:
    """One-hot categorical + scaled numeric features -> multinomial logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ("num", StandardScaler(), NUMERIC),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=c, max_iter=2000))])


def gamma_update(mean: float, lower: float, upper: float, *, drops: int, hours: float) -> tuple[float, float, float]:
    """Conjugate Gamma-Poisson update of a rate by ``drops`` capacity drops in ``hours`` of exposure.

    The prior's shape is matched to the interval's relative width (10%-90% of a Gamma), its
    rate to the mean; the posterior's mean and 10%/90% quantiles are returned.
    """
    from scipy import stats

    rel = max((upper - lower) / max(mean, 1e-12), 1e-3)
    # for a Gamma, (q90 - q10) / mean ~ 2 * 1.2816 / sqrt(shape)
    shape = max((2 * 1.2816 / rel) ** 2, 0.5)
    rate = shape / max(mean, 1e-12)
    post = stats.gamma(a=shape + drops, scale=1.0 / (rate + hours))
    return float(post.mean()), float(post.ppf(0.1)), float(post.ppf(0.9))


class RiskValidation(BaseModel):
    """Held-out quality of the classifier (grouped cross-validation)."""

    group: str = Field(description="What was held out: 'family' or 'region'.")
    log_loss: float
    base_rate_log_loss: float = Field(description="Log loss of predicting the training bucket shares.")
    accuracy: float
    mean_predicted_rate: float
    mean_observed_rate: float = Field(description="Mean bucket-mean rate of the held-out rows.")
    calibration: list[tuple[float, float, int]] = Field(description="(mean predicted, mean observed, n) per quintile.")


def validate(data: pd.DataFrame, *, group: str = "region", n_splits: int = 5, c: float = 0.1) -> RiskValidation:
    """Grouped K-fold: each fold holds out whole families or regions, as unseen offers would be."""
    from sklearn.model_selection import GroupKFold

    means = np.array([bucket_rate(i)[0] for i in range(len(BUCKET_BOUNDS))])
    probs = np.zeros((len(data), len(BUCKET_BOUNDS)))
    base = np.zeros_like(probs)
    y = data["bucket"].to_numpy()
    for train, test in GroupKFold(n_splits=n_splits).split(data, y, groups=data[group]):
        model = RiskModel.fit(data.iloc[train], c=c)
        probs[test] = model.predict_proba(data.iloc[test])
        base[test] = np.bincount(y[train], minlength=len(BUCKET_BOUNDS)) / len(train)
    eps = 1e-12
    pred_rate = probs @ means
    obs_rate = means[y]
    bins = np.quantile(pred_rate, np.linspace(0, 1, 6))
    which = np.clip(np.searchsorted(bins, pred_rate, side="right") - 1, 0, 4)
    calib = [(float(pred_rate[which == k].mean()), float(obs_rate[which == k].mean()), int((which == k).sum()))
             for k in range(5) if (which == k).any()]
    return RiskValidation(
        group=group, log_loss=float(-np.mean(np.log(probs[np.arange(len(y)), y] + eps))),
        base_rate_log_loss=float(-np.mean(np.log(base[np.arange(len(y)), y] + eps))),
        accuracy=float(np.mean(probs.argmax(axis=1) == y)), mean_predicted_rate=float(pred_rate.mean()),
        mean_observed_rate=float(obs_rate.mean()), calibration=calib,
    )


#: Weights of an advisor row's own bucket against the classifier, tried by :func:`choose_table_weight`.
TABLE_WEIGHTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class SnapshotValidation(BaseModel):
    """An older advisor snapshot predicting a newer one: how much to trust a row's own bucket."""

    train_snapshot: str
    test_snapshot: str
    rows: int = Field(description="Rows of the newer snapshot with a row in the older one (same type, region, os).")
    table_weight: float = Field(description="Weight of the older row's bucket, by held-out log likelihood.")
    base_weight: float = Field(description="Weight of the older snapshot's bucket shares, chosen the same way.")
    log_loss: dict[str, float] = Field(description="'mixture', 'table_only', 'classifier_only', 'base_rate'.")
    accuracy: dict[str, float]
    interval_inside: dict[str, float] = Field(
        description="Share of rows whose newer bucket-mean rate lies in the 10-90% interval of the prediction.")


def _scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(log loss, accuracy, share of the true bucket's mean rate inside the 10-90% mixture interval)."""
    means = np.array([bucket_rate(i)[0] for i in range(len(BUCKET_BOUNDS))])
    inside = 0
    for p, b in zip(probs, y):
        lo, hi = _mixture_quantiles(p, (0.1, 0.9))
        inside += lo <= means[b] <= hi
    ll = float(-np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12)))
    return ll, float(np.mean(probs.argmax(axis=1) == y)), inside / max(len(y), 1)


def choose_table_weight(data: pd.DataFrame, *, c: float = 0.1) -> SnapshotValidation:
    """Fit on the oldest snapshot, score the newest: the weight of a row's own (old) bucket.

    A table row's bucket is a month's share of interruptions at snapshot time; years later
    the bucket has moved for most rows. The estimate for a row is therefore the mixture
    ``wt x its own bucket + wb x the old bucket shares + (1 - wt - wb) x the classifier's
    probabilities``, the pair of :data:`TABLE_WEIGHTS` with the best log likelihood of the newer
    snapshot's buckets.
    """
    snaps = sorted(data["snapshot"].unique())
    if len(snaps) < 2:
        raise ForecastingError("choosing the table weight needs two advisor snapshots")
    old, new = data[data["snapshot"] == snaps[0]], data[data["snapshot"] == snaps[-1]]
    model = RiskModel.fit(old, c=c)
    keys = list(zip(new["instance_type"], new["region"], new["os"]))
    known = np.array([k in model.table.index for k in keys])
    test = new[known]
    y = test["bucket"].to_numpy()
    own = np.eye(len(BUCKET_BOUNDS))[[int(model.table.loc[k, "bucket"]) for k, ok in zip(keys, known) if ok]]
    clf = model.predict_proba(test)
    base = np.tile(np.bincount(old["bucket"], minlength=len(BUCKET_BOUNDS)) / len(old), (len(test), 1))

    def mix(w: tuple[float, float]) -> np.ndarray:
        out: np.ndarray = w[0] * own + w[1] * base + (1 - w[0] - w[1]) * clf
        return out

    def ll(w: tuple[float, float]) -> float:
        return float(-np.mean(np.log(mix(w)[np.arange(len(y)), y] + 1e-12)))

    grid = [(a, b) for a in TABLE_WEIGHTS for b in TABLE_WEIGHTS if a + b <= 1.0 + 1e-9]
    w = min(grid, key=ll)
    scored = {"mixture": _scores(mix(w), y), "table_only": _scores(own, y),
              "classifier_only": _scores(clf, y), "base_rate": _scores(base, y)}
    return SnapshotValidation(
        train_snapshot=str(snaps[0]), test_snapshot=str(snaps[-1]), rows=len(test), table_weight=w[0],
        base_weight=w[1],
        log_loss={k: round(v[0], 4) for k, v in scored.items()}, accuracy={k: round(v[1], 4) for k, v in scored.items()},
        interval_inside={k: round(v[2], 4) for k, v in scored.items()},
    )


def fit_calibrated(advisor: pd.DataFrame, traces: Sequence[SpotTrace], *, c: float = 0.1) -> RiskModel:
    """The evidence-calibrated risk model: bucket weights from the snapshots, rates and launches from traces.

    With a single advisor snapshot the row's own bucket keeps weight 1, as :meth:`RiskModel.fit` does.
    """
    if advisor["snapshot"].nunique() >= 2:
        v = choose_table_weight(advisor, c=c)
        model = RiskModel.fit(advisor, c=c, table_weight=v.table_weight, base_weight=v.base_weight)
    else:
        model = RiskModel.fit(advisor, c=c)
    return model.calibrate(traces)
