"""What forecasts give the optimizer: price scenarios, per-period prices, interruption rates, throughput.

Loaded by the optimize job before it builds the ``optimizer.Problem``:

* ``scenarios[offer]``: one price per stored scenario path, the path's mean over the request's horizon
  (capped at the forecast horizon), rescaled from the forecast's last observed price to the offer's
  current price, so a newer tick since the forecast moves the scenarios with it. These feed the
  optimizer's CVaR term; offers without a forecast keep their price in every scenario.
* ``periods[offer]``: the point forecast per hour of the horizon (only with
  ``forecast_price_periods``, because it turns the solve multi-period).
* ``rates[offer]``: spot interruption rate per hour from ``forecasting.risk.RiskModel`` (fitted once per
  process on the spot-advisor table, bundled or configured), scaled by the offer's price volatility.
* ``performance[workload_type]``: the fitted relative-throughput table, keyed by the GPU model names
  of the offers at hand (models the fitted table lacks keep the optimizer's data-sheet figure).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cloudarb.config import Settings
from cloudarb.db.models import Offer as OfferRow
from cloudarb.db.models import StoredForecast
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store

log = logging.getLogger(__name__)

DEFAULT_SPOT_SAVINGS_PCT = 70.0
"""Savings over on-demand assumed for a spot offer whose on-demand twin is not among the offers."""


@dataclass
class Feed:
    scenarios: dict[str, list[float]] = field(default_factory=dict)
    periods: dict[str, list[float]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    performance: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_feed(session: Any, settings: Settings, rows: Sequence[OfferRow], *, horizon_hours: float) -> Feed:
    """Everything the stored forecasts and the fitted models say about ``rows``."""
    feed = Feed()
    if not rows:
        return feed
    not_before = utcnow() - timedelta(seconds=settings.forecast_max_age_s)
    stored = store.latest_for_offers(session, offer_keys=[r.offer_key for r in rows], not_before=not_before)
    _price_paths(feed, rows, stored, settings, horizon_hours)
    if settings.forecast_risk_model:
        try:
            feed.rates = interruption_rates(settings, rows, stored)
        except Exception as exc:  # the optimizer's default rate still applies
            log.warning("interruption-risk model unavailable: %s", exc, exc_info=True)
            feed.notes.append(f"risk model unavailable: {exc}")
    if settings.forecast_performance_table:
        try:
            feed.performance = performance_tables(sorted({r.gpu_model for r in rows}))
        except Exception as exc:
            log.warning("performance table unavailable: %s", exc, exc_info=True)
            feed.notes.append(f"performance table unavailable: {exc}")
    return feed


def _price_paths(feed: Feed, rows: Sequence[OfferRow], stored: dict[str, StoredForecast], settings: Settings,
                 horizon_hours: float) -> None:
    usable = {k: f for k, f in stored.items() if f.kind == "price" and f.paths.get("scenarios")}
    if not usable:
        return
    # the optimizer needs one scenario count and one period count across offers: keep the common shape
    shape = Counter((len(f.paths["scenarios"]), f.horizon) for f in usable.values()).most_common(1)[0][0]
    steps = max(1, min(shape[1], math.ceil(horizon_hours)))
    by_key = {r.offer_key: r for r in rows}
    for key, f in usable.items():
        if (len(f.paths["scenarios"]), f.horizon) != shape:
            continue
        row = by_key[key]
        last = f.paths.get("last") or 0.0
        scale = row.price_per_hour / last if last and last > 0 else 1.0
        paths = np.asarray(f.paths["scenarios"], dtype=float)[:, :steps]
        feed.scenarios[key] = [max(0.0, float(v)) for v in paths.mean(axis=1) * scale]
        if settings.forecast_price_periods:
            feed.periods[key] = [max(0.0, float(v) * scale) for v in f.paths["point"][:steps]]


# ---------------------------------------------------------------- interruption risk


def advisor_path(settings: Settings) -> Path:
    if settings.forecast_spot_advisor_path is not None:
        return Path(settings.forecast_spot_advisor_path)
    return Path(str(resources.files("cloudarb").joinpath("data", "aws_spot_advisor_gpu.csv")))


@lru_cache(maxsize=2)
def risk_model(path: str, cache_root: str) -> Any:
    """The fitted risk model for a spot-advisor file.

    Fitting takes seconds (feature building plus a logistic regression), and RQ runs every job in a
    fresh work horse, so the fitted model is also pickled under the data directory, keyed by the
    file's content hash: later processes load it in a fraction of that time.
    """
    import hashlib
    import os
    import pickle

    from forecasting.risk import RiskModel, load_spot_advisor

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    cached = Path(cache_root) / f"risk-model-{digest}.pkl"
    try:
        with cached.open("rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        pass
    model = RiskModel.fit(load_spot_advisor(path))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cached)
    except OSError:
        log.warning("could not cache the fitted risk model at %s", cached, exc_info=True)
    return model


def interruption_rates(settings: Settings, rows: Sequence[OfferRow], stored: dict[str, StoredForecast]) -> dict[str, float]:
    """Rate per hour for spot offers that state none; one batched classifier call for all of them.

    Per offer this is ``RiskModel.estimate``'s mean (the advisor row's bucket if the table holds the
    instance type and region, else the classifier's bucket mixture), times ``exp(volatility)``.
    """
    import pandas as pd

    from forecasting.risk import BUCKET_BOUNDS, bucket_rate, instance_features

    wanted = [r for r in rows if r.spot and r.interruption_rate_per_hour is None]
    if not wanted:
        return {}
    model = risk_model(str(advisor_path(settings)), str(Path(settings.data_dir) / "forecast-cache"))
    on_demand = {(r.provider, r.region, r.instance_type): r.price_per_hour for r in rows if not r.spot}
    means = np.array([bucket_rate(i)[0] for i in range(len(BUCKET_BOUNDS))])
    probs = np.zeros((len(wanted), len(BUCKET_BOUNDS)))
    unknown: list[int] = []
    feats: list[dict[str, Any]] = []
    for i, r in enumerate(wanted):
        key = (r.instance_type, r.region, "Linux")
        if key in model.table.index:
            probs[i, int(model.table.loc[key, "bucket"])] = 1.0
            continue
        od = on_demand.get((r.provider, r.region, r.instance_type))
        savings = 100.0 * (1.0 - r.price_per_hour / od) if od and od > 0 else DEFAULT_SPOT_SAVINGS_PCT
        unknown.append(i)
        feats.append(instance_features(r.instance_type or r.gpu_model, r.region, savings_pct=savings,
                                       vcpus=float(r.vcpus or 8.0)))
    if unknown:
        probs[unknown] = model.predict_proba(pd.DataFrame(feats))
    rates = probs @ means
    out: dict[str, float] = {}
    for r, rate in zip(wanted, rates):
        f = stored.get(r.offer_key)
        vol = f.volatility if f is not None and f.volatility else 0.0
        out[r.offer_key] = float(rate * math.exp(vol))
    return out


# ---------------------------------------------------------------- performance


@lru_cache(maxsize=1)
def _fitted_tables() -> dict[str, dict[str, float]]:
    from forecasting.performance import fit_performance_model

    return fit_performance_model().tables


def performance_tables(gpu_models: Sequence[str]) -> dict[str, dict[str, float]]:
    """Workload type -> {offer GPU model: relative throughput}, covering every model given."""
    from optimizer.performance import canonical_model, relative_throughput

    fitted = _fitted_tables()
    out: dict[str, dict[str, float]] = {}
    for wtype in ("training", "inference", "batch"):
        table = fitted.get("training" if wtype == "batch" else wtype, {})
        by_canon = {canonical_model(name): value for name, value in table.items()}
        out[wtype] = {
            m: float(by_canon.get(canonical_model(m), relative_throughput(m, wtype))) for m in gpu_models
        }
    return out
