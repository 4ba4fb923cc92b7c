"""Performance model: relative throughput of a workload type on a GPU model, from specs.

Fitted on benchmark observations (``data/gpu_benchmarks.csv``, every row with its source)
and vendor specifications (``data/gpu_specs.csv``). For each workload type a log-linear
model is fitted::

    log(throughput[gpu, benchmark]) = b[benchmark] + w_c log(TFLOPS) + w_m log(bandwidth) + w_v log(VRAM)

The benchmark intercepts absorb the units of each benchmark, so observations of different
benchmarks pool into one set of hardware weights; the weights are what carries over to GPU
models never benchmarked. A GPU's relative throughput is ``exp(w . (x_gpu - x_ref))``, the
same for every benchmark of the type, relative to the reference GPU (A100 80GB SXM). Ridge
shrinkage (on the hardware weights only, the intercepts are fitted by centering) keeps the
weights sane with a dozen GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from forecasting.errors import DataError, ForecastingError

REFERENCE_GPU = "A100 80GB SXM"
FEATURES = ("fp16_tflops", "mem_bw_gbs", "vram_gb")
WORKLOAD_TYPES = ("training", "inference")


def _open(path: str | Path | None, name: str) -> pd.DataFrame:
    try:
        if path is None:
            with resources.files("forecasting").joinpath("data", name).open("r") as fh:
                return pd.read_csv(fh)
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {name}: {exc}", source=str(path or name)) from exc


def load_specs(path: str | Path | None = None) -> pd.DataFrame:
    """GPU specifications indexed by canonical model name (default: the shipped file)."""
    specs = _open(path, "gpu_specs.csv")
    missing = {"gpu_model", *FEATURES} - set(specs.columns)
    if missing:
        raise DataError(f"missing columns {sorted(missing)}", source=str(path or "gpu_specs.csv"))
    return specs.set_index("gpu_model")


def load_benchmarks(path: str | Path | None = None) -> pd.DataFrame:
    """Benchmark observations: gpu_model, workload_type, benchmark, value, source."""
    obs = _open(path, "gpu_benchmarks.csv")
    missing = {"gpu_model", "workload_type", "benchmark", "value", "source"} - set(obs.columns)
    if missing:
        raise DataError(f"missing columns {sorted(missing)}", source=str(path or "gpu_benchmarks.csv"))
    return obs[obs["value"] > 0]


def _design(specs: pd.DataFrame, gpus: pd.Series | list[str]) -> np.ndarray:
    unknown = sorted(set(gpus) - set(specs.index))
    if unknown:
        raise ForecastingError(f"no specifications for GPU models {unknown}")
    return np.asarray(np.log(specs.loc[list(gpus), list(FEATURES)].to_numpy(dtype=float)), dtype=float)


@dataclass(frozen=True)
class WorkloadModel:
    """Hardware weights of one workload type (on log TFLOPS, log bandwidth, log VRAM)."""

    workload_type: str
    weights: np.ndarray
    n_obs: int
    n_gpus: int

    def log_relative(self, specs: pd.DataFrame, gpus: list[str], reference: str = REFERENCE_GPU) -> np.ndarray:
        x = _design(specs, gpus) - _design(specs, [reference])
        return np.asarray(x @ self.weights, dtype=float)


def fit_workload(obs: pd.DataFrame, specs: pd.DataFrame, workload_type: str, *, alpha: float = 0.1) -> WorkloadModel:
    """Ridge on within-benchmark centered logs (equivalent to benchmark intercepts)."""
    from sklearn.linear_model import Ridge

    sub = obs[obs["workload_type"] == workload_type]
    if sub["gpu_model"].nunique() < 3:
        raise ForecastingError(f"too few GPU models benchmarked for {workload_type!r}")
    x = _design(specs, sub["gpu_model"])
    y = np.log(sub["value"].to_numpy(dtype=float))
    groups = sub["benchmark"].to_numpy()
    for b in np.unique(groups):
        m = groups == b
        x[m] -= x[m].mean(axis=0)
        y[m] -= y[m].mean()
    reg = Ridge(alpha=alpha, fit_intercept=False).fit(x, y)
    return WorkloadModel(workload_type, np.asarray(reg.coef_, dtype=float), int(len(sub)), int(sub["gpu_model"].nunique()))


class PerformanceModel(BaseModel):
    """Fitted weights per workload type, and the relative-throughput table they imply."""

    reference_gpu: str = REFERENCE_GPU
    weights: dict[str, list[float]] = Field(description="Workload type -> weights on log(TFLOPS, GB/s, GB).")
    tables: dict[str, dict[str, float]] = Field(description="Workload type -> GPU model -> relative throughput.")


def fit_performance_model(
    *, benchmarks_path: str | Path | None = None, specs_path: str | Path | None = None, alpha: float = 0.1,
) -> PerformanceModel:
    """Fit every workload type and tabulate all GPU models with specifications."""
    specs, obs = load_specs(specs_path), load_benchmarks(benchmarks_path)
    gpus = list(specs.index)
    weights: dict[str, list[float]] = {}
    tables: dict[str, dict[str, float]] = {}
    for wt in WORKLOAD_TYPES:
        model = fit_workload(obs, specs, wt, alpha=alpha)
        weights[wt] = model.weights.tolist()
        rel = np.exp(model.log_relative(specs, gpus))
        tables[wt] = {g: float(round(r, 4)) for g, r in zip(gpus, rel)}
    return PerformanceModel(weights=weights, tables=tables)


def performance_table(workload_type: str = "training", **kwargs: object) -> dict[str, float]:
    """The optimizer's default table: GPU model -> throughput relative to the A100 80GB SXM."""
    model = fit_performance_model(**kwargs)  # type: ignore[arg-type]
    try:
        return model.tables[workload_type]
    except KeyError as exc:
        raise ForecastingError(f"unknown workload type {workload_type!r}; valid: {list(WORKLOAD_TYPES)}") from exc


class PerformanceValidation(BaseModel):
    """Leave-one-GPU-model-out error: how well unseen GPUs are predicted from their specs."""

    workload_type: str
    median_abs_pct_error: float
    per_gpu_pct_error: dict[str, float] = Field(description="Held-out GPU -> signed % error of its relative throughput.")


def validate(workload_type: str, *, alpha: float = 0.1, benchmarks_path: str | Path | None = None,
             specs_path: str | Path | None = None) -> PerformanceValidation:
    """Refit without each GPU model in turn and predict its throughput relative to the others."""
    specs, obs = load_specs(specs_path), load_benchmarks(benchmarks_path)
    sub = obs[obs["workload_type"] == workload_type]
    errors: dict[str, float] = {}
    for gpu in sorted(sub["gpu_model"].unique()):
        train = sub[sub["gpu_model"] != gpu]
        model = fit_workload(train, specs, workload_type, alpha=alpha)
        errs = []
        for _bench, grp in sub.groupby("benchmark"):
            others = grp[grp["gpu_model"] != gpu]
            held = grp[grp["gpu_model"] == gpu]
            if held.empty or others.empty:
                continue
            # observed and predicted log-throughput of the held-out GPU relative to the others' mean
            obs_rel = np.log(held["value"].iloc[0]) - np.log(others["value"]).mean()
            pred = model.log_relative(specs, [gpu])[0] - model.log_relative(specs, list(others["gpu_model"])).mean()
            errs.append(pred - obs_rel)
        if errs:
            errors[gpu] = float(100 * (np.exp(np.mean(errs)) - 1))
    abs_err = np.abs(list(errors.values()))
    return PerformanceValidation(workload_type=workload_type, median_abs_pct_error=float(np.median(abs_err)),
                                 per_gpu_pct_error=errors)
