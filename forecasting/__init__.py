"""Forecasting: series -> forecasts (quantiles, scenarios) and backtests.

Public API (what ``cloudarb.jobs`` calls); heavy engines (statsmodels, scikit-learn,
prophet) are imported only inside the functions that use them.

Forecasts
    forecast(series, ForecastConfig(...)) -> (ForecastResult, BacktestReport | None)
    forecast_many(series_list, config, n_workers=, cache=, progress=) -> list[Outcome]
    backtest(series, horizon=, step=, start=, models=) -> BacktestReport
    promote(current, challenger) -> PromotionDecision
Demand / prices
    load_demand_series(path), load_group_demand_series(path), evaluate_demand(...),
    demand_upper_bound(series, horizon=, quantile=) -> (DemandBound, ForecastResult)
    load_price_series(history_path, snapshots_path), evaluate_price_series(series),
    evaluate_price_gate(series, rules); ForecastConfig(skill_rule=SkillRule()) -> ForecastResult.skill
Risk / performance
    load_spot_advisor(path), RiskModel.fit(frame).estimate(..., zone=) -> RiskEstimate
    fit_calibrated(advisor_frame, load_spot_traces(dir)): rates and launch success from observed evidence
    performance_table(workload_type) -> dict[gpu_model, relative throughput]
"""

from forecasting.backtest import backtest
from forecasting.demand import (
    DEMAND_CONFIG,
    DemandBound,
    demand_upper_bound,
    evaluate_demand,
    load_demand_series,
    load_group_demand_series,
)
from forecasting.errors import (
    DataError,
    ForecastingError,
    InsufficientDataError,
    ModelFitError,
    UnknownModelError,
)
from forecasting.parallel import DiskCache, MemoryCache, Outcome, forecast_many
from forecasting.performance import PerformanceModel, fit_performance_model, performance_table
from forecasting.prices import (
    PRICE_CONFIG,
    PRICE_SKILL_RULE,
    evaluate_price_gate,
    evaluate_price_series,
    load_price_series,
    weekly_price_panel,
)
from forecasting.risk import RiskEstimate, RiskModel, choose_table_weight, fit_calibrated, load_spot_advisor
from forecasting.schemas import (
    BacktestReport,
    ForecastResult,
    ModelMetrics,
    ModelVersion,
    PromotionDecision,
    Series,
    SkillReport,
    StepSkill,
)
from forecasting.selection import ForecastConfig, forecast, model_version, promote
from forecasting.skill import SkillRule
from forecasting.spot_traces import LaunchEstimate, load_spot_traces

__all__ = [
    "DEMAND_CONFIG", "PRICE_CONFIG", "PRICE_SKILL_RULE", "LaunchEstimate", "SkillReport", "SkillRule", "StepSkill",
    "choose_table_weight", "evaluate_price_gate", "fit_calibrated", "load_spot_traces", "BacktestReport", "DataError", "DemandBound", "DiskCache", "ForecastConfig",
    "ForecastResult", "ForecastingError", "InsufficientDataError", "MemoryCache", "ModelFitError", "ModelMetrics",
    "ModelVersion", "Outcome", "PerformanceModel", "PromotionDecision", "RiskEstimate", "RiskModel", "Series",
    "UnknownModelError", "backtest", "demand_upper_bound", "evaluate_demand", "evaluate_price_series",
    "fit_performance_model", "forecast", "forecast_many", "load_demand_series", "load_group_demand_series",
    "load_price_series", "load_spot_advisor", "model_version", "performance_table", "promote", "weekly_price_panel",
]
