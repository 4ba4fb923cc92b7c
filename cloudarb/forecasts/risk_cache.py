"""The served interruption rate's light half: cached priors per input, and the fleet's update on top.

The fitted risk model (``feed.risk_model``) needs pandas and scikit-learn; its figures for an input
(instance type, region, spot savings, vCPUs, zone) change only when the advisor file, the traces or
the modelling code do, so they are kept in :class:`RateCache`: the prior's mean rate, its Gamma shape
(its weight in pseudo-counts) and the traced launch-success share with its Beta concentration.
Fleet evidence (:mod:`cloudarb.forecasts.fleet`) changes with every interruption, so it is never
cached: each call applies it to the cached prior (a closed-form conjugate update), and a rate can
never be stale against the fleet. Nothing here imports the forecasting library: the API uses it to
show a served rate and where it came from, and never fits a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.config import Settings
from cloudarb.db.models import StoredForecast
from cloudarb.forecasts.fleet import FleetEvidence, PoolKey, pool_key, posterior_launch, posterior_rate
from cloudarb.storage.offers import OfferFields

log = logging.getLogger(__name__)

DEFAULT_SPOT_SAVINGS_PCT = 70.0
"""Savings over on-demand assumed for a spot offer whose on-demand twin is not among the offers."""
SHAPE, LAUNCH_P, LAUNCH_C = "shape:", "launch:", "launchc:"
"""Prefixes of the cache's companion entries (a rate's key is a JSON list, so they never collide)."""


def advisor_path(settings: Settings) -> Path:
    if settings.forecast_spot_advisor_path is not None:
        return Path(settings.forecast_spot_advisor_path)
    return Path(str(resources.files("cloudarb").joinpath("data", "aws_spot_advisor_gpu.csv")))


def traces_dir(settings: Settings) -> str:
    """The calibration traces' folder as a cache key part ('' = uncalibrated)."""
    return str(settings.forecast_spot_traces_dir) if settings.forecast_spot_traces_dir is not None else ""


def traces_digest(folder: str) -> str:
    """Content hash of a traces folder's index and JSON files ('' for none)."""
    if not folder:
        return ""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix in {".csv", ".json"}:
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


_digests: dict[tuple[object, ...], str] = {}


def library_digest(settings: Settings) -> str:
    """What fitted models and cached figures depend on: the advisor file, the calibration traces and the
    modelling code (hashed once per process and version of those files: the API asks on every page)."""
    import importlib.util

    spec = importlib.util.find_spec("forecasting")  # finds the package without importing it
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    sources = [Path(root) / name for name in ("risk.py", "spot_traces.py", "performance.py") for root in roots]
    folder = traces_dir(settings)
    watched = [Path(advisor_path(settings)), *sources] + ([Path(folder) / "index.csv"] if folder else [])
    memo = (folder, *((str(p), p.stat().st_mtime_ns if p.exists() else 0) for p in watched))
    if memo in _digests:
        return _digests[memo]
    _digests[memo] = digest = _library_digest(settings, sources)
    return digest


def _library_digest(settings: Settings, sources: list[Path]) -> str:
    h = hashlib.sha256(Path(advisor_path(settings)).read_bytes())
    h.update(traces_digest(traces_dir(settings)).encode())
    for source in sources:
        if source.exists():
            h.update(source.read_bytes())
    return h.hexdigest()[:16]


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class RateCache:
    """Prior figures by what they depend on, kept in memory and in a JSON file keyed by the advisor file,
    the traces and the modelling code.

    An optimize job needs one rate per spot offer; computing them needs pandas and scikit-learn
    (seconds to import in a fresh process) and the fitted model. Offers change price far more often
    than the rate's inputs change, so nearly every job finds all its priors here and never imports the
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

    def has_prior(self, key: str) -> bool:
        return key in self._rates and SHAPE + key in self._rates

    def update(self, rates: dict[str, float]) -> None:
        with self._lock:
            self._rates.update(rates)
            try:
                write_atomically(self.path, json.dumps(self._rates, sort_keys=True).encode())
            except OSError:
                log.warning("could not cache interruption rates at %s", self.path, exc_info=True)


_rate_caches: dict[str, RateCache] = {}
_rate_caches_lock = threading.Lock()


def rate_cache(settings: Settings) -> RateCache:
    path = Path(settings.data_dir) / "forecast-cache" / f"risk-rates-{library_digest(settings)}.json"
    with _rate_caches_lock:
        cache = _rate_caches.get(str(path))
        if cache is None:
            cache = _rate_caches[str(path)] = RateCache(path)
        return cache


def rate_key(row: OfferFields, savings: float) -> str:
    return json.dumps([row.instance_type or row.gpu_model, row.region, round(savings, 1), float(row.vcpus or 8.0),
                       row.zone or ""])


@dataclass(frozen=True)
class OfferRisk:
    """The served interruption rate of one spot offer and where it came from."""

    rate_per_hour: float
    prior_rate_per_hour: float
    source: str
    fleet: FleetEvidence | None = None
    launch_success: float | None = None


Inputs = dict[str, tuple[OfferFields, float]]
"""Cache key -> (an offer with those inputs, its spot savings in percent)."""


OnDemand = dict[tuple[str, str, str], float]
"""(provider, region, instance type) -> on-demand price: what a spot offer's savings are measured against."""


def rate_inputs(rows: Sequence[OfferFields], on_demand: OnDemand | None = None) -> list[tuple[OfferFields, str, float]]:
    """(offer, cache key, savings) for each spot offer that states no rate of its own; savings against
    ``on_demand`` (by default the on-demand offers among ``rows``)."""
    if on_demand is None:
        on_demand = {(r.provider, r.region, r.instance_type): r.price_per_hour for r in rows if not r.spot}
    out: list[tuple[OfferFields, str, float]] = []
    for r in rows:
        if not r.spot or r.interruption_rate_per_hour is not None:
            continue
        od = on_demand.get((r.provider, r.region, r.instance_type))
        savings = 100.0 * (1.0 - r.price_per_hour / od) if od and od > 0 else DEFAULT_SPOT_SAVINGS_PCT
        out.append((r, rate_key(r, savings), round(savings, 1)))
    return out


def pools(rows: Sequence[OfferFields]) -> set[PoolKey]:
    return {pool_key(r.provider, r.instance_type, r.region, r.zone) for r in rows if r.spot}


def served(settings: Settings, rows: Sequence[OfferFields], stored: dict[str, StoredForecast],
           fleet: dict[PoolKey, FleetEvidence], on_demand: OnDemand | None = None) -> tuple[dict[str, OfferRisk], Inputs]:
    """The served figures of every spot offer whose prior is cached, and the inputs still missing.

    Rate: the prior's Gamma updated with the offer's pool's interruptions over its exposure hours,
    times ``exp(volatility)`` of the offer's stored price forecast (as before). Launch success: the
    traced share's Beta (where the traces observed the instance type) updated with the pool's
    launches and capacity refusals.
    """
    cache = rate_cache(settings)
    keyed = rate_inputs(rows, on_demand)
    if any(not cache.has_prior(key) for _, key, _ in keyed):
        cache.reload()
    base = "advisor+traces" if traces_dir(settings) else "advisor"
    out: dict[str, OfferRisk] = {}
    missing: Inputs = {}
    for r, key, savings in keyed:
        prior, shape = cache.get(key), cache.get(SHAPE + key)
        if prior is None or shape is None:
            missing[key] = (r, savings)
            continue
        ev = fleet.get(pool_key(r.provider, r.instance_type, r.region, r.zone))
        f = stored.get(r.offer_key)
        scale = math.exp(f.volatility) if f is not None and f.volatility else 1.0
        p, c = cache.get(LAUNCH_P + key), cache.get(LAUNCH_C + key)
        launch_prior = (p, c) if p is not None and c is not None and p >= 0 else None
        told = ev.describe() if ev is not None else ""
        out[r.offer_key] = OfferRisk(
            rate_per_hour=float(posterior_rate(prior, shape, ev) * scale), prior_rate_per_hour=float(prior * scale),
            source=base + ("+volatility" if scale != 1.0 else "") + (f"; {told}" if told else ""),
            fleet=ev, launch_success=posterior_launch(launch_prior, ev))
    return out, missing


def offer_view(session: Session, settings: Settings, rows: Sequence[dict[str, Any]], *,
               now: datetime) -> dict[str, dict[str, Any]]:
    """The risk figures of a page of offers (column dicts) as the API shows them, keyed by offer: the
    served rate (None until an optimize job has computed the offer's prior: the API never fits a model),
    the prior, where it came from and our fleet's evidence. On-demand offers get none."""
    from cloudarb.db.models import Offer
    from cloudarb.forecasts import store
    from cloudarb.forecasts.fleet import fleet_evidence

    spot = [SimpleNamespace(**r) for r in rows if r.get("spot")]
    if not spot or not settings.forecast_risk_model:
        return {}
    on_demand: OnDemand = {(str(p), str(g), str(t)): float(c) for p, g, t, c in session.execute(
        select(Offer.provider, Offer.region, Offer.instance_type, Offer.price_per_hour).where(
            Offer.spot.is_(False), Offer.instance_type.in_({r.instance_type for r in spot}),
            Offer.region.in_({r.region for r in spot})))}
    offers: list[Any] = spot
    fleet = fleet_evidence(session, now=now, window=timedelta(days=settings.forecast_fleet_window_days),
                           pools=pools(offers)) if settings.forecast_fleet_window_days > 0 else {}
    stored = store.latest_for_offers(session, offer_keys=[r.offer_key for r in spot],
                                     not_before=now - timedelta(seconds=settings.forecast_max_age_s))
    risks, _ = served(settings, offers, stored, fleet, on_demand)
    out: dict[str, dict[str, Any]] = {}
    for r in spot:
        ev = fleet.get(pool_key(r.provider, r.instance_type, r.region, r.zone)) or FleetEvidence()
        risk = risks.get(r.offer_key)
        stated = r.interruption_rate_per_hour
        out[r.offer_key] = {
            "interruption_rate_per_hour": stated if stated is not None else risk.rate_per_hour if risk else None,
            "prior_rate_per_hour": risk.prior_rate_per_hour if risk else None,
            "source": "provider" if stated is not None else risk.source if risk else
            "not computed yet (an optimize job computes it)" + (f"; {ev.describe()}" if ev.describe() else ""),
            "launch_success": risk.launch_success if risk else posterior_launch(None, ev),
            "fleet_interruptions": ev.interruptions, "fleet_exposure_hours": round(ev.exposure_hours, 3),
            "fleet_launches": ev.launches, "fleet_launch_refusals": ev.refusals,
            "fleet_mean_time_to_running_s": ev.mean_time_to_running_s,
        }
    return out
