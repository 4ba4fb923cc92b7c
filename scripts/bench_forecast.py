#!/usr/bin/env python
"""Forecasting benchmark: prints one JSON document on stdout.

  /work/venv/bin/python scripts/bench_forecast.py [--data ../shared/data] [--workers 2]

* demand: Philly GPUs per hour, 24 h horizon, origins every 48 h from 2017-11-20; served
  (walk-forward selected) MASE and 80% coverage against the baselines, the demand candidates
  (DEMAND_CONFIG: last state, state + arrivals, day profile with the trace's holiday
  calendar, see PHILLY_CONFIG) and, for reference, ETS and an untuned Prophet, for both demand
  measures: ``allocated`` (GPUs of every job running at some moment of the hour; this series
  reproduces the issue's reference baselines, last value 0.55 and seasonal naive 0.90) and
  ``mean`` (GPU-hours used in the hour). ``--only demand`` runs just this part.
* teams (only with ``--only teams``): the same evaluation on each Philly team's own series
  (virtual clusters with >= 100 jobs), in a pool of --workers processes; how often the served
  forecast is no worse than the best baseline.
* prices: GCP weekly price series (a seeded random sample of --price-limit, 0 = all), 4-week
  horizon, the served forecast under PRICE_CONFIG's skill rule walk-forward at every 4-week
  origin from --price-start: share of series where it is worse / better than last value,
  MAE ratios, 80% coverage, against the same candidates with no rule. ``prices_selection``
  runs the older selection evaluation (winners, change anticipation, Prophet sample).
* risk: the interruption rate of p3.2xlarge calibrated on the spot traces (advisor scale,
  prior weight, leave-one-zone-out and first-half/second-half figures) and launch success
  per zone.
* throughput: 500 hourly series (28-day windows of the Philly series ending at 500
  different hours), fit + 168 h forecast, in a pool of --workers processes: the numpy
  Holt-Winters bulk model on all 500, statsmodels ETS on --ets-series of them.
Timings on a shared machine are polluted by other processes; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecasting.backtest import backtest, mase_scale
from forecasting.demand import (
    DEMAND_CONFIG,
    Measure,
    evaluate_demand,
    load_demand_series,
    load_group_demand_series,
)
from forecasting.models.registry import make_model
from forecasting.parallel import forecast_many
from forecasting.prices import (
    PRICE_CONFIG,
    PRICE_SKILL_RULE,
    GateEvaluation,
    PriceEvaluation,
    evaluate_price_gate,
    evaluate_price_series,
    load_price_series,
)
from forecasting.risk import RiskModel, choose_table_weight, fit_calibrated, load_spot_advisor
from forecasting.schemas import BASELINES, Series
from forecasting.selection import ForecastConfig
from forecasting.skill import SkillRule
from forecasting.spot_traces import load_spot_traces

log = logging.getLogger("bench_forecast")


def metrics_json(rep: Any, names: list[str]) -> dict[str, Any]:
    return {n: {"mase": round(rep.metrics[n].mase, 4), "smape": round(rep.metrics[n].smape, 2),
                "coverage_80": None if rep.metrics[n].coverage is None else round(rep.metrics[n].coverage, 4)}
            for n in names if n in rep.metrics}


#: The Philly cluster is Microsoft's (Redmond, Washington) and the original trace's timestamps
#: are Pacific local times (they end in PST/PDT), so its days are read as they are (the UTC
#: default of a naive index leaves them alone) against Washington's public holidays, as an
#: organization would configure it (``CLOUDARB_FORECAST_HOLIDAYS=US-WA``).
PHILLY_CONFIG = DEMAND_CONFIG.model_copy(update={"model_params": {"day_profile": {"holidays": "US-WA"}}})


def bench_demand(data: Path, measure: Measure) -> dict[str, Any]:
    t0 = time.perf_counter()
    series = load_demand_series(data / "demand" / "philly_jobs_pollux.csv", measure=measure)
    ev = evaluate_demand(series, start=datetime(2017, 11, 20), step=48, horizon=24, config=PHILLY_CONFIG)
    rep = ev.report
    prophet = backtest(series, horizon=24, step=48, start=datetime(2017, 11, 20),
                       models={"prophet": lambda: make_model("prophet"), "ets": lambda: make_model("ets"),
                               "day_profile_no_calendar": lambda: make_model("day_profile")})
    pool = ["last_value", "seasonal_naive", *DEMAND_CONFIG.candidates]
    best_on_backtest = min([n for n in pool if n in rep.metrics], key=lambda n: rep.metrics[n].mase)
    return {
        "measure": measure, "origins": len(rep.origins), "horizon_h": 24,
        "served": metrics_json(rep, ["served"])["served"],
        "served_models": dict(Counter(ev.served_models)),
        "baselines": metrics_json(rep, ["last_value", "seasonal_naive"]),
        "candidates": {**metrics_json(rep, list(DEMAND_CONFIG.candidates)),
                       **metrics_json(prophet, ["prophet", "ets", "day_profile_no_calendar"])},
        "selection": {"candidates": list(DEMAND_CONFIG.candidates), "lookback_origins": DEMAND_CONFIG.selection_origins,
                      "lookback_step_h": DEMAND_CONFIG.selection_step},
        "selected_on_full_backtest": {"model": best_on_backtest, **metrics_json(rep, [best_on_backtest])[best_on_backtest]},
        "served_le_best_baseline": rep.metrics["served"].mase <= min(rep.metrics[b].mase for b in BASELINES),
        "mase_scale": "in-sample seasonal-naive MAE (lag 24) of the training data at each origin",
        "mase_if_scaled_on_last_4_weeks": _mase_recent_scale(series, rep, ["served", *BASELINES], 24 * 28),
        "oracle_flat_mase": _oracle_flat(series, rep),
        "targets": {"served_mase_le": 0.5, "coverage_80_in": [0.75, 0.85]},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _team_one(series: Series) -> dict[str, Any]:
    rep = evaluate_demand(series, start=datetime(2017, 11, 20), step=48, horizon=24, config=PHILLY_CONFIG).report
    mase = {n: round(m.mase, 4) for n, m in rep.metrics.items()}
    best = min(mase[b] for b in BASELINES)
    return {"series": series.series_id, "mase": mase, "served_le_best_baseline": mase["served"] <= best}


def bench_teams(data: Path, measure: Measure, workers: int) -> dict[str, Any]:
    """Per-team series: served against the best baseline on each."""
    t0 = time.perf_counter()
    series = load_group_demand_series(data / "demand" / "philly_jobs_pollux.csv", measure=measure)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(_team_one, series))
    return {"measure": measure, "teams": len(rows),
            "served_le_best_baseline": sum(r["served_le_best_baseline"] for r in rows),
            "served_mean_mase": round(float(np.mean([r["mase"]["served"] for r in rows])), 4),
            "last_value_mean_mase": round(float(np.mean([r["mase"]["last_value"] for r in rows])), 4),
            "per_team": rows, "seconds": round(time.perf_counter() - t0, 1)}


def _values_at(series: Series) -> tuple[np.ndarray, Callable[[Any], int]]:
    """The series' values and a function from an origin timestamp to its position."""
    y = series.to_pandas()
    pos = {t: i for i, t in enumerate(y.index)}
    return y.to_numpy(dtype=float), lambda origin: pos[pd.Timestamp(origin)]


def _oracle_flat(series: Series, rep: Any) -> float:
    """Informative only, uses the future: MASE of the best constant path (the median of each
    window's actuals). A level-only forecast, however good, cannot score below this."""
    vals, at = _values_at(series)
    per = []
    for origin in rep.origins:
        t = at(origin)
        actual = vals[t : t + rep.horizon]
        per.append(float(np.mean(np.abs(actual - np.median(actual)))) / mase_scale(vals[:t], 24))
    return round(float(np.mean(per)), 4)


def _mase_recent_scale(series: Series, rep: Any, names: list[str], window: int) -> dict[str, float]:
    """Informative only: MASE with the seasonal-naive scale of the last ``window`` points (not the metric)."""
    vals, at = _values_at(series)
    out = {}
    for n in names:
        per = [d.mae / mase_scale(vals[max(0, at(d.origin) - window) : at(d.origin)], 24)
               for d in rep.details if d.model == n]
        out[n] = round(float(np.mean(per)), 4)
    return out


def _price_one(args: tuple[Series, ForecastConfig, datetime]) -> PriceEvaluation | None:
    series, cfg, start = args
    return evaluate_price_series(series, config=cfg, step=4, start=start)


def bench_prices(data: Path, workers: int, start: datetime, limit: int | None, prophet_sample: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    hist = data / "price_history"
    series = load_price_series(hist / "gcp_gpu_instance_price_history_2022_2026.csv",
                               hist / "gcp_cyclenerd_pricing_snapshots.csv")
    rng = random.Random(0)
    if limit:
        series = rng.sample(series, limit)
    # point accuracy only: calibration refits are skipped to keep the run short
    params = {"ets": {**PRICE_CONFIG.model_params["ets"], "calibration_origins": 0},
              "lag_ridge": {**PRICE_CONFIG.model_params["lag_ridge"], "calibration_origins": 0}}
    cfg = PRICE_CONFIG.model_copy(update={"model_params": params})
    with ProcessPoolExecutor(max_workers=workers) as pool:
        evs = [e for e in pool.map(_price_one, [(s, cfg, start) for s in series], chunksize=8) if e is not None]
    n = len(evs)
    windows = sum(e.change_windows for e in evs)
    anticip = {k: sum(e.anticipated.get(k, 0) for e in evs) for k in ["served", "ets", "lag_ridge", "last_value"]}
    out: dict[str, Any] = {
        "series": n, "origins_from": start.date().isoformat(), "horizon_weeks": 4,
        "share_served_le_last_value": round(sum(e.served_le_last_value for e in evs) / n, 4),
        "share_winner": {k: round(v / n, 4) for k, v in Counter(e.winner for e in evs).items()},
        "share_served_strictly_better_than_last_value": round(sum(
            e.report.metrics["served"].mae < e.report.metrics["last_value"].mae - 1e-12 for e in evs) / n, 4),
        "change_windows": windows,
        "change_anticipation_rate": {k: round(v / windows, 4) if windows else None for k, v in anticip.items()},
        "series_with_any_change": sum(e.change_windows > 0 for e in evs),
    }
    if prophet_sample:
        sample = rng.sample([e.series_id for e in evs if e.change_windows > 0], min(prophet_sample, n))
        by_id = {s.series_id: s for s in series}
        pcfg = cfg.model_copy(update={"candidates": ("ets", "lag_ridge", "prophet")})
        maybe = [evaluate_price_series(by_id[i], config=pcfg, step=8, start=start) for i in sample]
        pe = [e for e in maybe if e is not None]
        out["prophet_sample"] = {
            "series": len(pe), "note": "series with at least one price change; origins every 8 weeks",
            "share_winner": {k: round(v / len(pe), 4) for k, v in Counter(e.winner for e in pe).items()},
            "share_prophet_le_last_value": round(sum(
                e.report.metrics["prophet"].mae <= e.report.metrics["last_value"].mae for e in pe
                if "prophet" in e.report.metrics) / len(pe), 4),
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _gate_one(args: tuple[Series, dict[str, SkillRule], datetime]) -> GateEvaluation | None:
    series, rules, start = args
    return evaluate_price_gate(series, rules, start=start)


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def gate_summary(evs: list[GateEvaluation], label: str) -> dict[str, Any]:
    """Out-of-sample figures of one rule: per series, served against last value (relative MAE tolerance 1e-9)."""
    worse = [e.served_mae[label] > e.last_value_mae * (1 + 1e-9) + 1e-12 for e in evs]
    better = [e.served_mae[label] < e.last_value_mae * (1 - 1e-9) - 1e-12 for e in evs]
    ratios = [e.served_mae[label] / e.last_value_mae for e in evs if e.last_value_mae > 0]
    cov = [c for e in evs if (c := e.served_coverage[label]) is not None]
    skill = [e.skill_origins[label] > 0 for e in evs]
    return {"share_served_worse_than_last_value": _share(worse),
            "share_served_better_than_last_value": _share(better),
            "mean_mae_ratio_served_over_last_value": round(float(np.mean(ratios)), 4) if ratios else None,
            "pooled_mae_ratio": round(sum(e.served_mae[label] for e in evs) /
                                      max(sum(e.last_value_mae for e in evs), 1e-12), 4),
            "share_series_with_skill_at_some_origin": _share(skill),
            "coverage_80_mean_over_series": round(float(np.mean(cov)), 4) if cov else None,
            "share_series_coverage_below_75": _share([c < 0.75 for c in cov])}


def bench_price_gate(data: Path, workers: int, start: datetime, limit: int | None) -> dict[str, Any]:
    """The served price forecast under the skill rule, walk-forward, against last value."""
    t0 = time.perf_counter()
    hist = data / "price_history"
    series = load_price_series(hist / "gcp_gpu_instance_price_history_2022_2026.csv",
                               hist / "gcp_cyclenerd_pricing_snapshots.csv")
    if limit:
        series = random.Random(0).sample(series, limit)
    rules = {"served": PRICE_SKILL_RULE, "no_rule": SkillRule(alpha=1.0, margin=0.0, min_informative=1)}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        evs = [e for e in pool.map(_gate_one, [(s, rules, start) for s in series], chunksize=4) if e is not None]
    cand = {}
    for n in PRICE_CONFIG.candidates:
        ok = [e for e in evs if np.isfinite(e.candidate_mae[n])]
        cand[n] = {"series": len(ok), "pooled_mae_ratio": round(sum(e.candidate_mae[n] for e in ok) /
                                                               max(sum(e.last_value_mae for e in ok), 1e-12), 4),
                   "share_worse_than_last_value": _share([e.candidate_mae[n] > e.last_value_mae * (1 + 1e-9) + 1e-12
                                                          for e in ok])}
    lv_cov = [c for e in evs if (c := e.last_value_coverage) is not None]
    return {
        "series": len(evs), "eval_origins_from": start.date().isoformat(), "horizon_weeks": PRICE_CONFIG.horizon,
        "candidates": list(PRICE_CONFIG.candidates), "rule": PRICE_SKILL_RULE.describe(),
        "rule_params": PRICE_SKILL_RULE.model_dump(),
        "served": gate_summary(evs, "served"),
        "no_rule_best_candidate_per_step_by_mae": gate_summary(evs, "no_rule"),
        "candidate_always": cand,
        "served_coverage_80_by_kind": {
            kind: round(float(np.mean(c)), 4) if (c := [x for e in evs if e.series_id.endswith(kind)
                                                         and (x := e.served_coverage["served"]) is not None]) else None
            for kind in ("/spot", "/on_demand")},
        "last_value_coverage_80_mean_over_series": round(float(np.mean(lv_cov)), 4) if lv_cov else None,
        "share_step_shaped": _share([e.step_shaped for e in evs]),
        "eval_origins": sum(e.eval_origins for e in evs),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def bench_risk(data: Path) -> dict[str, Any]:
    """Interruption rates and launch success calibrated on the spot traces, with held-out figures."""
    t0 = time.perf_counter()
    frame = load_spot_advisor(data / "risk" / "aws_spot_advisor_gpu_interruption_savings.csv")
    base = RiskModel.fit(frame)
    snapshots = choose_table_weight(frame)
    model = fit_calibrated(frame, load_spot_traces(data / "risk" / "spot_traces"))
    if model.rates is None or model.launches is None:
        raise SystemExit("risk: the traces hold no preemption or no availability evidence")
    rates, launches = model.rates, model.launches
    zones = {z.zone: z for z in rates.held_out}
    per_zone = {}
    for zone in sorted({*zones, *launches.per_zone}):
        est = model.estimate("p3.2xlarge", zone[:-1], savings_pct=70, vcpus=8, zone=zone)
        per_zone[zone] = {"rate_per_hour": round(est.rate_per_hour, 4), "rate_10_90": [round(est.lower, 4), round(est.upper, 4)],
                          "observed_rate": round(zones[zone].observed_rate, 4) if zone in zones else None,
                          "launch_success": None if est.launch_success is None else round(est.launch_success, 4),
                          "launch_10_90": [est.launch_lower, est.launch_upper], "source": est.source}
    advisor = base.estimate("p3.2xlarge", "us-east-1", savings_pct=70, vcpus=8)
    return {
        "instance_type": "p3.2xlarge", "advisor_rate_per_hour": round(advisor.rate_per_hour, 6),
        "kappa_observed_over_advisor": round(rates.kappa, 1), "prior_shape": rates.shape,
        "prior_weight_hours": round(rates.prior_hours, 1),
        "held_out_zones": [z.model_dump() for z in rates.held_out],
        "held_out_inside_10_90": sum(z.inside for z in rates.held_out), "held_out_zones_n": len(rates.held_out),
        "held_out_loglik": round(rates.held_out_loglik, 2), "advisor_uncalibrated_loglik": round(rates.advisor_loglik, 2),
        "time_split_inside_10_90": rates.time_split_inside, "time_split_zones": rates.time_split_zones,
        "launch_concentration": launches.concentration, "launch_held_out_inside_10_90": launches.held_out_inside,
        "launch_zones": launches.zones, "launch_pooled_success": round(launches.pooled_success, 4),
        "per_zone": per_zone, "advisor_snapshots": snapshots.model_dump(),
        "rule": "advisor bucket probabilities = table_weight x the row's bucket + base_weight x bucket shares + rest x "
                "classifier (weights by log likelihood of the 2025 snapshot from 2021); rate prior Gamma(shape, "
                "shape / (kappa x advisor rate)), shape by leave-one-zone-out likelihood, updated per traced zone",
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _throughput_run(batch: list[Series], model: str, params: dict[str, Any], workers: int) -> dict[str, Any]:
    cfg = ForecastConfig(horizon=168, model=model, n_scenarios=100, model_params={model: params})
    t0 = time.perf_counter()
    out = forecast_many(batch, cfg, n_workers=workers)
    secs = time.perf_counter() - t0
    return {"series": len(batch), "model": model, "params": params, "errors": sum(o.error is not None for o in out),
            "seconds": round(secs, 2), "series_per_second": round(len(batch) / secs, 2)}


def bench_throughput(data: Path, workers: int, n_series: int, ets_series: int) -> dict[str, Any]:
    """Fit + 168 h forecast (point, quantiles, 100 scenarios) of every series in the pool."""
    s = load_demand_series(data / "demand" / "philly_jobs_pollux.csv").to_pandas()
    width = 24 * 28
    step = max(1, (len(s) - width) // n_series)
    batch = [Series.from_pandas(f"philly-window-{i}", s.iloc[i * step : i * step + width], freq="h", season_length=24)
             for i in range(n_series)]
    out: dict[str, Any] = {"horizon_h": 168, "workers": workers, "target_seconds_for_500": 60,
                           "bulk": _throughput_run(batch, "hw_grid", {}, workers)}
    if ets_series:
        ets = _throughput_run(batch[:ets_series], "ets", {"initialization": "heuristic", "brute": False,
                                                          "calibration_origins": 8}, workers)
        ets["extrapolated_seconds_for_500"] = round(ets["seconds"] * 500 / ets_series, 1)
        out["statsmodels_ets"] = ets
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=["demand", "teams", "prices", "prices_selection", "risk", "throughput"],
                    action="append")
    ap.add_argument("--measure", choices=["allocated", "mean"], action="append",
                    help="demand measure(s) to evaluate (default both; allocated is the issue's reference series)")
    ap.add_argument("--price-start", default="2024-07-01")
    ap.add_argument("--price-limit", type=int, default=200,
                    help="evaluate a random sample (seed 0) of the ~1960 price series; 0 = all (about 30 CPU-minutes)")
    ap.add_argument("--prophet-sample", type=int, default=20)
    ap.add_argument("--throughput-series", type=int, default=500)
    ap.add_argument("--ets-series", type=int, default=100, help="series for the statsmodels ETS timing (0: skip)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parts = args.only or ["demand", "prices", "risk", "throughput"]
    args.measure = args.measure or ["allocated", "mean"]
    result: dict[str, Any] = {"load_average_start": os.getloadavg()}
    if "throughput" in parts:
        result["throughput"] = bench_throughput(args.data, args.workers, args.throughput_series,
                                                args.ets_series)
    if "demand" in parts:
        result["demand"] = {m: bench_demand(args.data, m) for m in args.measure}
    if "teams" in parts:
        result["teams"] = {m: bench_teams(args.data, m, args.workers) for m in args.measure}
    if "prices" in parts:
        result["prices"] = bench_price_gate(args.data, args.workers, datetime.fromisoformat(args.price_start),
                                            args.price_limit)
    if "risk" in parts:
        result["risk"] = bench_risk(args.data)
    if "prices_selection" in parts:
        result["prices_selection"] = bench_prices(args.data, args.workers, datetime.fromisoformat(args.price_start),
                                        args.price_limit, args.prophet_sample)
    result["load_average_end"] = os.getloadavg()
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
