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

import hashlib
import json
import logging
import math
import os
import threading
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
from cloudarb.db.models import StoredForecast
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store
from cloudarb.storage.offers import OfferFields

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
            feed.rates = interruption_rates(settings, rows, stored)
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


def advisor_path(settings: Settings) -> Path:
    if settings.forecast_spot_advisor_path is not None:
        return Path(settings.forecast_spot_advisor_path)
    return Path(str(resources.files("cloudarb").joinpath("data", "aws_spot_advisor_gpu.csv")))


def traces_dir(settings: Settings) -> str:
    """The calibration traces' folder as a cache key part ('' = uncalibrated)."""
    return str(settings.forecast_spot_traces_dir) if settings.forecast_spot_traces_dir is not None else ""


def _traces_digest(folder: str) -> str:
    """Content hash of a traces folder's index and JSON files ('' for none)."""
    if not folder:
        return ""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix in {".csv", ".json"}:
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _library_digest(settings: Settings) -> str:
    """What fitted models and cached figures depend on: the advisor file, the calibration traces and the
    modelling code."""
    import importlib.util

    h = hashlib.sha256(Path(advisor_path(settings)).read_bytes())
    h.update(_traces_digest(traces_dir(settings)).encode())
    spec = importlib.util.find_spec("forecasting")  # finds the package without importing it
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for name in ("risk.py", "performance.py"):
        for root in roots:
            source = Path(root) / name
            if source.exists():
                h.update(source.read_bytes())
    return h.hexdigest()[:16]


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

    digest = hashlib.sha256(Path(path).read_bytes() + _traces_digest(traces).encode()).hexdigest()[:16]
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
        _write_atomically(cached, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        log.warning("could not cache the fitted risk model at %s", cached, exc_info=True)
    return model


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class RateCache:
    """Interruption rates by what they depend on (instance type, region, spot savings, vCPUs), kept in
    memory and in a JSON file keyed by the advisor file and the modelling code.

    An optimize job needs one rate per spot offer; computing them needs pandas and scikit-learn
    (seconds to import in a fresh process) and the fitted model. Offers change price far more often
    than the rate's inputs change, so nearly every job finds all its rates here and never imports the
    model: measured on the bundled snapshot, the feed took 6-9 s in a fresh process before and
    0.05 s with this cache.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rates: dict[str, float] = {}
        self._mtime: float | None = None
        self.reload()

    def reload(self) -> None:
        """Read what other processes added (a worker's work horses write here, their parent reads)."""
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            rates = {str(k): float(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return
        with self._lock:
            self._rates.update(rates)
            self._mtime = mtime

    def get(self, key: str) -> float | None:
        return self._rates.get(key)

    def update(self, rates: dict[str, float]) -> None:
        with self._lock:
            self._rates.update(rates)
            try:
                _write_atomically(self.path, json.dumps(self._rates, sort_keys=True).encode())
            except OSError:
                log.warning("could not cache interruption rates at %s", self.path, exc_info=True)


_rate_caches: dict[str, RateCache] = {}
_rate_caches_lock = threading.Lock()


def rate_cache(settings: Settings) -> RateCache:
    path = Path(settings.data_dir) / "forecast-cache" / f"risk-rates-{_library_digest(settings)}.json"
    with _rate_caches_lock:
        cache = _rate_caches.get(str(path))
        if cache is None:
            cache = _rate_caches[str(path)] = RateCache(path)
        return cache


def _rate_key(row: OfferFields, savings: float) -> str:
    return json.dumps([row.instance_type or row.gpu_model, row.region, round(savings, 1), float(row.vcpus or 8.0),
                       row.zone or ""])


def interruption_rates(settings: Settings, rows: Sequence[OfferFields], stored: dict[str, StoredForecast]) -> dict[str, float]:
    """Rate per hour for spot offers that state none.

    Per offer this is ``RiskModel.estimate``'s mean (the advisor row's bucket if the table holds the
    instance type and region, else the classifier's bucket mixture for the offer's spot savings,
    rounded to 0.1 point), times ``exp(volatility)``. Rates come from ``RateCache``; the model is
    loaded (one batched classifier call) only for inputs not seen before.
    """
    wanted = [r for r in rows if r.spot and r.interruption_rate_per_hour is None]
    if not wanted:
        return {}
    on_demand = {(r.provider, r.region, r.instance_type): r.price_per_hour for r in rows if not r.spot}
    keyed: list[tuple[OfferFields, str, float]] = []
    for r in wanted:
        od = on_demand.get((r.provider, r.region, r.instance_type))
        savings = 100.0 * (1.0 - r.price_per_hour / od) if od and od > 0 else DEFAULT_SPOT_SAVINGS_PCT
        keyed.append((r, _rate_key(r, savings), round(savings, 1)))
    cache = rate_cache(settings)
    missing = {key: (r, savings) for r, key, savings in keyed if cache.get(key) is None}
    if missing:
        cache.reload()
        missing = {key: value for key, value in missing.items() if cache.get(key) is None}
    if missing:
        cache.update(_model_rates(settings, missing))
    out: dict[str, float] = {}
    for r, key, _ in keyed:
        f = stored.get(r.offer_key)
        vol = f.volatility if f is not None and f.volatility else 0.0
        out[r.offer_key] = float((cache.get(key) or 0.0) * math.exp(vol))
    return out


def _model_rates(settings: Settings, inputs: dict[str, tuple[OfferFields, float]]) -> dict[str, float]:
    """The risk model's mean rate for each input (one batched classifier call for the unknown ones)."""
    import pandas as pd

    from forecasting.risk import BUCKET_BOUNDS, bucket_rate, instance_features

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
    if model.rates is not None:
        rates = np.array([_calibrated_mean(model, float(rate), inputs[key][0]) for key, rate in zip(keys, rates)])
    return {key: float(rate) for key, rate in zip(keys, rates)}


def _calibrated_mean(model: Any, advisor_mean: float, row: OfferFields) -> float:
    """The posterior mean rate of a calibrated model (``RiskModel.estimate``'s, without the volatility
    factor, applied later): a Gamma prior of mean ``kappa x`` the advisor's rate, updated with the
    offer's zone's traced preemptions where that zone was traced."""
    shape = float(model.rates.shape)
    rate = shape / max(float(model.rates.kappa) * advisor_mean, 1e-12)
    drops, hours = (model.zone_evidence or {}).get((row.instance_type, row.zone or ""), (0, 0.0))
    return float((shape + drops) / (rate + hours))


# ---------------------------------------------------------------- performance


_tables_lock = threading.Lock()
_tables: dict[str, dict[str, dict[str, float]]] = {}


def _fitted_tables(settings: Settings) -> dict[str, dict[str, float]]:
    """The fitted relative-throughput tables, fitted once and kept as JSON beside the rate cache
    (keyed by the modelling code), so a fresh process reads them instead of importing pandas."""
    path = Path(settings.data_dir) / "forecast-cache" / f"performance-{_library_digest(settings)}.json"
    with _tables_lock:
        if str(path) in _tables:
            return _tables[str(path)]
        try:
            tables: dict[str, dict[str, float]] = json.loads(path.read_text())
        except (OSError, ValueError):
            from forecasting.performance import fit_performance_model

            tables = {k: {m: float(v) for m, v in t.items()} for k, t in fit_performance_model().tables.items()}
            try:
                _write_atomically(path, json.dumps(tables, sort_keys=True).encode())
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
