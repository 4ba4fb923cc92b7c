"""What forecasts give the optimizer: price scenarios, per-period prices, interruption rates, throughput.

Loaded by the optimize job before it builds the ``optimizer.Problem``:

* ``scenarios[offer]``: one price per stored scenario path, the path's mean over the request's horizon
  (capped at the forecast horizon), rescaled from the forecast's last observed price to the offer's
  current price, so a newer tick since the forecast moves the scenarios with it. These feed the
  optimizer's CVaR term; offers without a forecast keep their price in every scenario.
* ``periods[offer]``: the point forecast per hour of the horizon (only with
  ``forecast_price_periods``, because it turns the solve multi-period).
* ``rates[offer]``: spot interruption rate per hour from ``forecasting.risk.RiskModel`` (fitted once per
  process on the spot-advisor table, bundled or configured, calibrated on spot traces where configured),
  updated with what our own fleet saw in the offer's pool (``cloudarb.forecasts.fleet``: interruptions
  over exposure hours, a Gamma-Poisson update), scaled by the offer's price volatility; ``risk[offer]``
  says where each came from, ``launch_success[offer]`` the share of spot launches that get capacity
  (the traces' share updated with our fleet's launches and refusals; for a spot offer that states its own
  rate, our fleet's launches alone) where there is one. The optimizer prices refused launches into each
  line's expected cost from it (``optimizer.schemas.Offer.launch_success_probability``).
* ``performance[workload_type]``: the fitted relative-throughput table, keyed by the GPU model names
  of the offers at hand (models the fitted table lacks keep the optimizer's data-sheet figure).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cloudarb.config import Settings
from cloudarb.db.models import StoredForecast
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store
from cloudarb.forecasts.fleet import FleetEvidence, PoolKey, fleet_evidence, pool_key, posterior_launch
from cloudarb.forecasts.risk_cache import (
    LAUNCH_C,
    LAUNCH_P,
    SHAPE,
    Inputs,
    OfferRisk,
    library_digest,
    pools,
    served,
    traces_digest,
    write_atomically,
)
from cloudarb.forecasts.risk_cache import RateCache as RateCache  # names this module had before
from cloudarb.forecasts.risk_cache import advisor_path as advisor_path
from cloudarb.forecasts.risk_cache import rate_cache as rate_cache
from cloudarb.forecasts.risk_cache import traces_dir as traces_dir
from cloudarb.storage.offers import OfferFields

log = logging.getLogger(__name__)


@dataclass
class Feed:
    scenarios: dict[str, list[float]] = field(default_factory=dict)
    periods: dict[str, list[float]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    risk: dict[str, OfferRisk] = field(default_factory=dict)
    launch_success: dict[str, float] = field(default_factory=dict)
    performance: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_feed(session: Any, settings: Settings, rows: Sequence[OfferFields], *, horizon_hours: float) -> Feed:
    """Everything the stored forecasts and the fitted models say about ``rows``."""
    feed = Feed()
    if not rows:
        return feed
    not_before = utcnow() - timedelta(seconds=settings.forecast_max_age_s)
    stored = store.latest_for_offers(session, offer_keys=[r.offer_key for r in rows], not_before=not_before)
    _price_paths(feed, rows, stored, settings, horizon_hours)
    if settings.forecast_risk_model:
        try:
            fleet = load_fleet(session, settings, rows)
            feed.risk = offer_risks(settings, rows, stored, fleet)
            feed.rates = {k: r.rate_per_hour for k, r in feed.risk.items()}
            feed.launch_success = {k: r.launch_success for k, r in feed.risk.items() if r.launch_success is not None}
            feed.launch_success.update(stated_rate_launches(rows, fleet, skip=feed.launch_success))
            if fleet:
                feed.notes.append(fleet_note(fleet))
        except Exception as exc:  # the optimizer's default rate still applies
            log.warning("interruption-risk model unavailable: %s", exc, exc_info=True)
            feed.notes.append(f"risk model unavailable: {exc}")
    if settings.forecast_performance_table:
        try:
            feed.performance = performance_tables(settings, sorted({r.gpu_model for r in rows}))
        except Exception as exc:
            log.warning("performance table unavailable: %s", exc, exc_info=True)
            feed.notes.append(f"performance table unavailable: {exc}")
    return feed


def load_fleet(session: Any, settings: Settings, rows: Sequence[OfferFields]) -> dict[PoolKey, FleetEvidence]:
    """Our fleet's spot evidence for the offers' pools over the configured window (none when it is 0)."""
    if settings.forecast_fleet_window_days <= 0:
        return {}
    wanted = pools(rows)
    if not wanted:
        return {}
    return fleet_evidence(session, now=utcnow(), window=timedelta(days=settings.forecast_fleet_window_days),
                          pools=wanted)


def stated_rate_launches(rows: Sequence[OfferFields], fleet: dict[PoolKey, FleetEvidence],
                         skip: Container[str] = ()) -> dict[str, float]:
    """Launch success of spot offers the risk model leaves alone (they state their own interruption rate):
    our fleet's launches and refusals on the offer's pool over a uniform prior, where there are any."""
    out: dict[str, float] = {}
    for r in rows:
        if not r.spot or r.offer_key in skip:
            continue
        share = posterior_launch(None, fleet.get(pool_key(r.provider, r.instance_type, r.region, r.zone)))
        if share is not None:
            out[r.offer_key] = share
    return out


def fleet_note(fleet: dict[PoolKey, FleetEvidence]) -> str:
    evs = list(fleet.values())
    return (f"our fleet's spot evidence updated {len(evs)} pool(s): {sum(e.interruptions for e in evs)} "
            f"interruptions in {sum(e.exposure_hours for e in evs):.1f} h, "
            f"{sum(e.refusals for e in evs)} of {sum(e.launches + e.refusals for e in evs)} launches refused")


def _price_paths(feed: Feed, rows: Sequence[OfferFields], stored: dict[str, StoredForecast], settings: Settings,
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


@lru_cache(maxsize=2)
def risk_model(path: str, cache_root: str, traces: str = "") -> Any:
    """The fitted risk model for a spot-advisor file, calibrated on the traces in ``traces`` if given
    (``forecasting.risk.fit_calibrated``: the advisor's rates scaled to what traced instances saw, with
    each traced zone's own preemptions as evidence, and launch success per zone).

    Fitting takes seconds (feature building plus a logistic regression), and RQ runs every job in a
    fresh work horse, so the fitted model is also pickled under the data directory, keyed by the
    files' content hash: later processes load it in a fraction of that time.
    """
    import pickle

    from forecasting.risk import RiskModel, fit_calibrated, load_spot_advisor

    digest = hashlib.sha256(Path(path).read_bytes() + traces_digest(traces).encode()).hexdigest()[:16]
    cached = Path(cache_root) / f"risk-model-{digest}.pkl"
    try:
        with cached.open("rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        pass
    if traces:
        from forecasting.spot_traces import load_spot_traces

        model = fit_calibrated(load_spot_advisor(path), load_spot_traces(traces))
    else:
        model = RiskModel.fit(load_spot_advisor(path))
    try:
        write_atomically(cached, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        log.warning("could not cache the fitted risk model at %s", cached, exc_info=True)
    return model


def offer_risks(settings: Settings, rows: Sequence[OfferFields], stored: dict[str, StoredForecast],
                fleet: dict[PoolKey, FleetEvidence] | None = None) -> dict[str, OfferRisk]:
    """Served rate, prior, source and launch success for spot offers that state no rate.

    The prior per offer is ``RiskModel.estimate``'s (the advisor row's bucket if the table holds the
    instance type and region, else the classifier's bucket mixture for the offer's spot savings,
    rounded to 0.1 point; calibrated on the traces where configured), from ``RateCache``: the model is
    loaded (one batched classifier call) only for inputs not seen before. Our fleet's evidence for the
    offer's pool then updates it (:func:`cloudarb.forecasts.risk_cache.served`), never cached.
    """
    risks, missing = served(settings, rows, stored, fleet or {})
    if missing:
        rate_cache(settings).update(_model_rates(settings, missing))
        risks, missing = served(settings, rows, stored, fleet or {})  # savings need the on-demand twins
    return risks


def interruption_rates(settings: Settings, rows: Sequence[OfferFields], stored: dict[str, StoredForecast],
                       fleet: dict[PoolKey, FleetEvidence] | None = None) -> dict[str, float]:
    """Rate per hour for spot offers that state none (see :func:`offer_risks`)."""
    return {k: r.rate_per_hour for k, r in offer_risks(settings, rows, stored, fleet).items()}


def _model_rates(settings: Settings, inputs: Inputs) -> dict[str, float]:
    """Cache entries of each input: the risk model's mean rate, the Gamma shape of that prior and the
    traced launch share with its concentration (-1 where the traces did not observe the instance type).
    One batched classifier call for the inputs the advisor table does not hold."""
    import pandas as pd

    from forecasting.risk import BUCKET_BOUNDS, _mixture_quantiles, bucket_rate, instance_features
    from forecasting.spot_traces import launch_estimate

    model = risk_model(str(advisor_path(settings)), str(Path(settings.data_dir) / "forecast-cache"),
                       traces_dir(settings))
    keys = list(inputs)
    means = np.array([bucket_rate(i)[0] for i in range(len(BUCKET_BOUNDS))])
    probs = np.zeros((len(keys), len(BUCKET_BOUNDS)))
    unknown: list[int] = []
    direct: dict[int, float] = {}
    feats: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        r, savings = inputs[key]
        table_key = (r.instance_type, r.region, "Linux")
        if table_key in model.table.index:
            if model.table_weight >= 1.0:
                probs[i, int(model.table.loc[table_key, "bucket"])] = 1.0
            else:  # a calibrated model mixes the row's bucket with the base rates and the classifier
                direct[i] = model.advisor_rate(r.instance_type, r.region, savings_pct=savings, vcpus=float(r.vcpus or 8.0))
            continue
        unknown.append(i)
        feats.append(instance_features(r.instance_type or r.gpu_model, r.region, savings_pct=savings,
                                       vcpus=float(r.vcpus or 8.0)))
    if unknown:
        probs[unknown] = model.predict_proba(pd.DataFrame(feats))
    rates = probs @ means
    for i, rate in direct.items():
        rates[i] = rate
    out: dict[str, float] = {}
    for i, key in enumerate(keys):
        row = inputs[key][0]
        if model.rates is not None:
            mean, shape = _calibrated_prior(model, float(rates[i]), row)
        else:  # the advisor's mixture: a Gamma matched to its 10-90% interval (as ``gamma_update``)
            mean = float(rates[i])
            lo, hi = _mixture_quantiles(probs[i], (0.1, 0.9)) if i not in direct else (mean, mean)
            rel = max((hi - lo) / max(mean, 1e-12), 1e-3)
            shape = max((2 * 1.2816 / rel) ** 2, 0.5)
        launch = launch_estimate(model.launches, row.instance_type, row.zone or None) if model.launches else None
        out[key], out[SHAPE + key] = mean, shape
        out[LAUNCH_P + key] = launch.success if launch is not None else -1.0
        out[LAUNCH_C + key] = float(model.launches.concentration) if launch is not None else -1.0
    return out


def _calibrated_prior(model: Any, advisor_mean: float, row: OfferFields) -> tuple[float, float]:
    """(mean, shape) of a calibrated model's rate (``RiskModel.estimate``'s, without the volatility
    factor, applied later): a Gamma prior of mean ``kappa x`` the advisor's rate, updated with the
    offer's zone's traced preemptions where that zone was traced."""
    shape = float(model.rates.shape)
    rate = shape / max(float(model.rates.kappa) * advisor_mean, 1e-12)
    drops, hours = (model.zone_evidence or {}).get((row.instance_type, row.zone or ""), (0, 0.0))
    return float((shape + drops) / (rate + hours)), shape + drops


# ---------------------------------------------------------------- performance


_tables_lock = threading.Lock()
_tables: dict[str, dict[str, dict[str, float]]] = {}


def _fitted_tables(settings: Settings) -> dict[str, dict[str, float]]:
    """The fitted relative-throughput tables, fitted once and kept as JSON beside the rate cache
    (keyed by the modelling code), so a fresh process reads them instead of importing pandas."""
    path = Path(settings.data_dir) / "forecast-cache" / f"performance-{library_digest(settings)}.json"
    with _tables_lock:
        if str(path) in _tables:
            return _tables[str(path)]
        try:
            tables: dict[str, dict[str, float]] = json.loads(path.read_text())
        except (OSError, ValueError):
            from forecasting.performance import fit_performance_model

            tables = {k: {m: float(v) for m, v in t.items()} for k, t in fit_performance_model().tables.items()}
            try:
                write_atomically(path, json.dumps(tables, sort_keys=True).encode())
            except OSError:
                log.warning("could not cache the performance tables at %s", path, exc_info=True)
        _tables[str(path)] = tables
        return tables


def warm(settings: Settings) -> None:
    """Load what ``load_feed`` reads into this process (a worker calls it before forking work horses):
    the rate cache, the performance tables and, when risk rates are on, the fitted risk model."""
    if settings.forecast_performance_table:
        _fitted_tables(settings)
    if settings.forecast_risk_model:
        rate_cache(settings)
        risk_model(str(advisor_path(settings)), str(Path(settings.data_dir) / "forecast-cache"), traces_dir(settings))


def performance_tables(settings: Settings, gpu_models: Sequence[str]) -> dict[str, dict[str, float]]:
    """Workload type -> {offer GPU model: relative throughput}, covering every model given."""
    from optimizer.performance import canonical_model, relative_throughput

    fitted = _fitted_tables(settings)
    out: dict[str, dict[str, float]] = {}
    for wtype in ("training", "inference", "batch"):
        table = fitted.get("training" if wtype == "batch" else wtype, {})
        by_canon = {canonical_model(name): value for name, value in table.items()}
        out[wtype] = {
            m: float(by_canon.get(canonical_model(m), relative_throughput(m, wtype))) for m in gpu_models
        }
    return out
