"""Many series: parallel fitting, a cache of fitted models, incremental refits.

:func:`forecast_many` forecasts a batch of series in a process pool. Each outcome is cached
under ``(series_id, config key)`` with the hash of the data it was fitted on:

* same data again       -> the stored forecast is returned (``cache = "hit"``);
* the same series grown by new observations (the cached data is a prefix of the new
  data) -> the stored fitted model is *updated* (ETS keeps its smoothing parameters and
  reruns only the recursions) and the previously selected model is kept, skipping
  selection (``cache = "incremental"``); selection reruns when the caller asks for a full
  refit (champion/challenger cadence);
* anything else         -> full selection and fit (``cache = "miss"``).

The cache is an in-memory dict, or a directory of pickles shared across processes/runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.models.base import FitContext, Forecaster
from forecasting.models.baselines import LastValue
from forecasting.schemas import BacktestReport, ForecastResult, Series
from forecasting.selection import ForecastConfig, _result, diagnose, serve

log = logging.getLogger(__name__)


def data_hash(values: np.ndarray, timestamps: pd.DatetimeIndex, freq: str,
              covariates: dict[str, np.ndarray] | None = None) -> str:
    """Stable hash of a series' data (values incl. gaps, grid, frequency, covariates)."""
    h = hashlib.sha256(freq.encode())
    h.update(np.ascontiguousarray(timestamps.asi8).tobytes())
    h.update(np.ascontiguousarray(np.nan_to_num(values, nan=np.inf)).tobytes())
    for name in sorted(covariates or {}):
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.nan_to_num((covariates or {})[name], nan=np.inf)).tobytes())
    return h.hexdigest()[:32]


def series_hash(series: Series) -> str:
    s = series.to_pandas()
    return data_hash(s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.freq, series.covariate_arrays())


def config_key(config: ForecastConfig) -> str:
    """Hash of everything in the config that changes a fit (model params included)."""
    return hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CacheEntry:
    """What is kept per (series, config): the data identity, the fitted model, the forecast."""

    series_id: str
    config_key: str
    data_hash: str
    n_points: int
    start: pd.Timestamp
    model_name: str
    model: Forecaster | None
    result: ForecastResult


class MemoryCache:
    """Dict-backed cache (one process)."""

    def __init__(self) -> None:
        self._d: dict[tuple[str, str], CacheEntry] = {}

    def get(self, series_id: str, key: str) -> CacheEntry | None:
        return self._d.get((series_id, key))

    def put(self, entry: CacheEntry) -> None:
        self._d[(entry.series_id, entry.config_key)] = entry


class DiskCache:
    """Directory of pickles, one per (series, config); survives restarts, shared by workers."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, series_id: str, key: str) -> Path:
        name = hashlib.sha256(f"{series_id}\0{key}".encode()).hexdigest()[:40]
        return self.root / f"{name}.pkl"

    def get(self, series_id: str, key: str) -> CacheEntry | None:
        path = self._path(series_id, key)
        try:
            with path.open("rb") as fh:
                entry = pickle.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            log.warning("cache: unreadable entry %s (%s); ignoring", path, exc)
            return None
        return entry if isinstance(entry, CacheEntry) else None

    def put(self, entry: CacheEntry) -> None:
        path = self._path(entry.series_id, entry.config_key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(entry, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)


Cache = MemoryCache | DiskCache


@dataclass
class Outcome:
    """Result of one series in a batch.

    ``error`` records why the configured forecast failed; ``result`` is then the last-value
    baseline (``fallback_reason`` says why), or None when the series had no observation at all.
    """

    series_id: str
    result: ForecastResult | None
    report: BacktestReport | None
    cache: str
    error: str | None = None


def _work(series: Series, config: ForecastConfig, previous: CacheEntry | None) -> tuple[Outcome, CacheEntry | None]:
    """Forecast one series (runs in a worker); incremental when ``previous`` is a prefix fit."""
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    key = config_key(config)
    covariates = series.covariate_arrays()
    digest = data_hash(y, index, series.freq, covariates)
    try:
        # a skill-gated forecast is judged again on the new data: the verdict may change with it
        if previous is not None and previous.model is not None and config.skill_rule is None:
            fallback, reason, flags = diagnose(y, m, config)
            if fallback is None:
                model = previous.model.update(y, FitContext(season_length=m, index=index, covariates=covariates))
                fc = model.predict(config.horizon)
                res = _result(series, index, fc, previous.model_name, None, flags + ["incremental_refit"], config)
                entry = CacheEntry(series.series_id, key, digest, len(y), index[0], previous.model_name, model, res)
                return Outcome(series.series_id, res, None, "incremental"), entry
        res, rep, model = serve(series, config)
        # Prophet models hold a Stan backend handle; cache their forecasts, not the model.
        entry = CacheEntry(series.series_id, key, digest, len(y), index[0], res.model,
                           None if res.model == "prophet" else model, res)
        return Outcome(series.series_id, res, rep, "miss"), entry
    except Exception as exc:  # noqa: BLE001 - one series never fails the batch (see isolate_failure)
        return isolate_failure(series, config, exc), None


def isolate_failure(series: Series, config: ForecastConfig, exc: Exception) -> Outcome:
    """The outcome of a series whose forecast raised: a last-value forecast and the reason.

    Any exception counts, not only :class:`ForecastingError`: a numeric library that changes
    a shape between versions once raised IndexError inside one model and failed whole
    batches. The series still gets the baseline (``model="last_value"``, ``fallback_reason``
    naming the error, flag ``forecast_failed``) and ``Outcome.error`` records what happened.
    Only a series with nothing to repeat (no observation at all) is left without a result.
    The baseline is not cached, so the next batch tries the configured models again.
    """
    reason = f"forecast failed ({type(exc).__name__}: {exc}); serving last value"
    log.warning("forecast_many: %s: %s", series.series_id, reason)
    try:
        s = series.to_pandas()
        y, index = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index)
        ctx = FitContext(season_length=series.period, index=index)
        fc = LastValue().fit(y, ctx).predict(config.horizon)
        res = _result(series, index, fc, LastValue.name, reason, ["forecast_failed"], config)
    except Exception as inner:  # noqa: BLE001 - nothing to repeat: the error is the outcome
        return Outcome(series.series_id, None, None, "miss", error=f"{reason}; baseline failed too: {inner}")
    return Outcome(series.series_id, res, None, "miss", error=reason)


def _work_packed(args: tuple[Series, ForecastConfig, CacheEntry | None]) -> tuple[Outcome, CacheEntry | None]:
    return _work(*args)


def _is_prefix(entry: CacheEntry, series: Series) -> bool:
    s = series.to_pandas()
    if len(s) <= entry.n_points or s.index[0] != entry.start:
        return False
    head = s.iloc[: entry.n_points]
    covariates = {k: v[: entry.n_points] for k, v in series.covariate_arrays().items()}
    digest = data_hash(head.to_numpy(dtype=float), pd.DatetimeIndex(head.index), series.freq, covariates)
    return digest == entry.data_hash


def forecast_many(
    series: Sequence[Series], config: ForecastConfig, *, n_workers: int = 1, cache: Cache | None = None,
    full_refit: bool = False, progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Forecast every series, ``n_workers`` processes at a time, using and filling ``cache``.

    ``progress(done, total)`` is called in the calling process as results arrive (the
    application turns it into progress events). ``full_refit`` ignores incremental entries.
    """
    key = config_key(config)
    outcomes: dict[int, Outcome] = {}
    todo: list[tuple[int, tuple[Series, ForecastConfig, CacheEntry | None]]] = []
    for i, s in enumerate(series):
        entry = cache.get(s.series_id, key) if cache is not None else None
        if entry is not None and entry.data_hash == series_hash(s):
            outcomes[i] = Outcome(s.series_id, entry.result, None, "hit")
            continue
        prev = entry if entry is not None and not full_refit and _is_prefix(entry, s) else None
        todo.append((i, (s, config, prev)))
    total, done = len(series), len(outcomes)
    if progress:
        progress(done, total)
    results: Iterator[tuple[Outcome, CacheEntry | None]]
    if n_workers <= 1 or len(todo) <= 1:
        results = (_work_packed(args) for _, args in todo)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=n_workers)
        chunk = max(1, len(todo) // (4 * n_workers))
        results = pool.map(_work_packed, [args for _, args in todo], chunksize=chunk)
    try:
        for (i, _), (outcome, entry) in zip(todo, results):
            outcomes[i] = outcome
            if cache is not None and entry is not None:
                cache.put(entry)
            done += 1
            if progress:
                progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown()
    return [outcomes[i] for i in range(len(series))]
