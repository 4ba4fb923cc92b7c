"""Skill over last value: a forecast other than last value is served only where it has earned it.

Price series move in rare steps, so a model that smooths or extrapolates them wins a short
lookback by luck and loses out of sample (the issue measured lag ridge 1.04-1.32x last
value's MAE at 3 days on daily Azure/GCP spot prices with the plain selection). Here every
non-baseline candidate is backtested from rolling origins spaced ``step`` apart (default the
horizon, so the windows of one step do not overlap) and judged *per horizon step* against
last value on the absolute errors at that step:

* ``n_informative``: origins where the two errors differ (on a step series most windows
  have no change and both are exact; they are no evidence either way);
* the candidate must win on at least ``min_informative`` of them, a one-sided sign test of
  wins against losses must give ``p <= alpha``, and its MAE must be at most
  ``(1 - margin)`` times last value's.

A step that fails keeps last value. When no step passes, last value is served and the
forecast says ``"no skill over last value"`` with the figures (:class:`SkillReport`).

Intervals: the served path's errors at the latest ``calibration_origins`` backtest origins
are out-of-sample errors, so they are the calibration set (split conformal). Their coverage
is checked *nested*, each origin with the errors of its own latest earlier origins only, and
the interval is widened until that coverage reaches the nominal level minus half the
tolerance: first by scaling the errors, then, where they are mostly exact zeros (a step
price between moves, which no scale widens), by reading the quantiles at wider levels.

Step-shaped series (:func:`step_shaped`) are reported as such; last value is the step model
there (it keeps the current step's level, and its empirical error paths are the jumps seen
at past origins), and a noise model is served only if it passes the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from forecasting.models.base import ModelForecast
from forecasting.schemas import SkillReport, StepSkill

LAST_VALUE = "last_value"
#: Widening factors tried, smallest first.
SCALES: tuple[float, ...] = (1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)
#: Earlier-origin error paths needed before an origin's nested coverage is judged.
MIN_CALIBRATION = 5


class SkillRule(BaseModel):
    """When a candidate may replace last value at a horizon step (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    origins: int = Field(default=52, ge=1, description="Most recent backtest origins judged.")
    step: int | None = Field(default=None, ge=1, description="Spacing of the origins; default the horizon.")
    min_informative: int = Field(default=4, ge=1, description="Wins needed at least (origins where errors differ).")
    alpha: float = Field(default=0.05, gt=0, le=1, description="Level of the one-sided sign test.")
    margin: float = Field(default=0.1, ge=0, lt=1, description="MAE must be below (1 - margin) x last value's.")
    coverage_tolerance: float = Field(
        default=0.0, ge=0, lt=0.5, description="Nested coverage must reach the level minus half of this.")
    calibration_origins: int = Field(
        default=13, ge=MIN_CALIBRATION, description="Most recent earlier origins whose errors make an interval.")

    def describe(self) -> str:
        return (f"a model other than last value is served at a horizon step only if, over the {self.origins} "
                f"latest backtest origins, it had the smaller absolute error on at least {self.min_informative} "
                f"origins, a one-sided sign test of wins against losses gives p <= {self.alpha:g}, and its MAE is "
                f"at most {1 - self.margin:g} x last value's")


def sign_test_p(wins: int, losses: int) -> float:
    """P(at least ``wins`` successes of ``wins + losses`` fair coin flips)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return float(sum(math.comb(n, k) for k in range(wins, n + 1)) / 2.0 ** n)


def step_shaped(y: np.ndarray, *, max_change_share: float = 0.2) -> bool:
    """True when at most ``max_change_share`` of the observed one-step changes are non-zero."""
    d = np.diff(y[np.isfinite(y)])
    if d.size == 0:
        return True
    moved = np.abs(d) > 1e-9 * max(float(np.nanmax(np.abs(y))), 1e-12)
    return bool(moved.mean() <= max_change_share)


@dataclass(frozen=True)
class Backtest:
    """Point forecasts of several models from the same origins, with the actuals."""

    origins: list[int]
    actuals: np.ndarray  # (k, horizon)
    points: dict[str, np.ndarray]  # name -> (k, horizon), NaN where the model failed

    @classmethod
    def from_runs(cls, y: np.ndarray, origins: Sequence[int], horizon: int,
                  forecasts: Mapping[str, Sequence[ModelForecast | None]]) -> Backtest:
        actual = np.array([y[t : t + horizon] for t in origins], dtype=float).reshape(len(origins), horizon)
        points = {}
        for name, fcs in forecasts.items():
            arr = np.full((len(origins), horizon), np.nan)
            for i, fc in enumerate(fcs):
                if fc is not None:
                    arr[i] = fc.point
            points[name] = arr
        return cls(list(origins), actual, points)

    def subset(self, rows: Sequence[int]) -> Backtest:
        idx = np.asarray(rows, dtype=int)
        return Backtest([self.origins[i] for i in idx], self.actuals[idx], {k: v[idx] for k, v in self.points.items()})


def judge_steps(bt: Backtest, rule: SkillRule) -> list[StepSkill]:
    """Per horizon step: the best candidate by MAE and whether it passes ``rule``."""
    horizon = bt.actuals.shape[1]
    lv_err = np.abs(bt.actuals - bt.points[LAST_VALUE])
    out = []
    for h in range(horizon):
        best: StepSkill | None = None
        for name, pts in bt.points.items():
            if name == LAST_VALUE:
                continue
            err = np.abs(bt.actuals[:, h] - pts[:, h])
            ok = np.isfinite(err) & np.isfinite(lv_err[:, h])
            if not ok.any():
                continue
            e, b = err[ok], lv_err[ok, h]
            tol = 1e-9 * max(float(np.max(np.abs(bt.actuals[:, h][ok]))), 1e-12)
            wins, losses = int(np.sum(e < b - tol)), int(np.sum(e > b + tol))
            mae, lv_mae = float(e.mean()), float(b.mean())
            p = sign_test_p(wins, losses)
            passed = wins >= rule.min_informative and p <= rule.alpha and mae <= (1 - rule.margin) * lv_mae
            cand = StepSkill(step=h + 1, served=name if passed else LAST_VALUE, candidate=name, n_origins=int(ok.sum()),
                             wins=wins, losses=losses, p_value=p, candidate_mae=mae, last_value_mae=lv_mae,
                             skill=passed)
            if best is None or (cand.skill, -mae) > (best.skill, -(best.candidate_mae or 0.0)):
                best = cand
        if best is None:
            ok = np.isfinite(lv_err[:, h])
            best = StepSkill(step=h + 1, served=LAST_VALUE, candidate=None, n_origins=int(ok.sum()), wins=0, losses=0,
                             p_value=None, candidate_mae=None,
                             last_value_mae=float(lv_err[ok, h].mean()) if ok.any() else None, skill=False)
        out.append(best)
    return out


def served_errors(bt: Backtest, choice: Sequence[str]) -> np.ndarray:
    """Error paths (actual - served point) at the backtest origins; rows with a gap or failure dropped."""
    pts = np.column_stack([bt.points[name][:, h] for h, name in enumerate(choice)])
    err: np.ndarray = bt.actuals - pts
    return err


def nested_coverage(errors: np.ndarray, origins: Sequence[int], horizon: int, level: float, scale: float,
                    stretch: float = 1.0, recent: int | None = None) -> float | None:
    """Coverage of the central ``level`` interval at each of the ``recent`` latest origins, built from
    the errors of its own ``recent`` latest earlier origins only, scaled by ``scale`` and read at
    stretched levels (the regime of the last origins is the one the forecast is served in)."""
    lo_q = float(np.clip(0.5 - level / 2 * stretch, 0.0, 1.0))
    hi_q = float(np.clip(0.5 + level / 2 * stretch, 0.0, 1.0))
    hits = total = 0
    rows_ok = np.isfinite(errors).all(axis=1)
    first = max(0, len(origins) - (recent or len(origins)))
    for j, t in enumerate(origins):
        if j < first:
            continue
        past = [i for i, o in enumerate(origins) if o + horizon <= t and rows_ok[i]][-(recent or len(origins)) :]
        if len(past) < MIN_CALIBRATION:
            continue
        cal = errors[past] * scale
        lo, hi = np.quantile(cal, lo_q, axis=0), np.quantile(cal, hi_q, axis=0)
        ok = np.isfinite(errors[j])
        hits += int(np.sum((errors[j][ok] >= lo[ok] - 1e-12) & (errors[j][ok] <= hi[ok] + 1e-12)))
        total += int(ok.sum())
    return hits / total if total else None


def widen(errors: np.ndarray, origins: Sequence[int], horizon: int, level: float,
          rule: SkillRule) -> tuple[float, float, float | None]:
    """(scale, level stretch, nested coverage): the first widening that reaches ``level - tolerance / 2``.

    Scales of :data:`SCALES` are tried first; where the errors are mostly exact zeros (a
    step price between moves) scaling leaves the interval a point, so the levels at which
    the quantiles are read are stretched next (an 80% interval read at 90%, 95%... of the
    errors), then both at their largest.
    """
    target = level - rule.coverage_tolerance / 2
    recent = rule.calibration_origins
    cov = None
    for k in SCALES:
        cov = nested_coverage(errors, origins, horizon, level, k, 1.0, recent)
        if cov is None or cov >= target:
            return k, 1.0, cov
    for st in stretches(level):
        cov = nested_coverage(errors, origins, horizon, level, 1.0, st, recent)
        if cov is not None and cov >= target:
            return 1.0, st, cov
    st = stretches(level)[-1]
    return SCALES[-1], st, nested_coverage(errors, origins, horizon, level, SCALES[-1], st, recent)


def stretches(level: float) -> list[float]:
    """Level stretches that read a central ``level`` interval at 85%, 90%, 95%, 98% and 100%."""
    return [x / level for x in (0.85, 0.9, 0.95, 0.98, 1.0) if x > level]


@dataclass(frozen=True)
class GateDecision:
    """What to serve: the model per step, the error paths' widening factor and the report."""

    choice: list[str]
    scale: float
    errors: np.ndarray
    report: SkillReport
    stretch: float = 1.0
    recent: int = 13

    @property
    def main_model(self) -> str:
        """The model serving most steps (last value on ties): the name the forecast carries."""
        names = [n for n in self.choice if n != LAST_VALUE]
        if not names:
            return LAST_VALUE
        return max(dict.fromkeys(names), key=names.count)


def decide(bt: Backtest, rule: SkillRule, *, level: float, stamps: Sequence[datetime], y_hist: np.ndarray) -> GateDecision:
    """Judge every step, then widen the served path's intervals on its backtest errors."""
    horizon = bt.actuals.shape[1]
    steps = judge_steps(bt, rule)
    choice = [s.served for s in steps]
    errors = served_errors(bt, choice)
    scale, stretch, cov = widen(errors, bt.origins, horizon, level, rule)
    has = any(s.skill for s in steps)
    reason = skill_reason(steps, has)
    report = SkillReport(rule=rule.describe(), origins=list(stamps), steps=steps, has_skill=has, reason=reason,
                         step_shaped=step_shaped(y_hist), interval_scale=scale, backtest_coverage=cov,
                         interval_level=level, interval_read_at=min(1.0, level * stretch))
    return GateDecision(choice, scale, errors, report, stretch, rule.calibration_origins)


def skill_reason(steps: Sequence[StepSkill], has_skill: bool) -> str:
    """One line: which steps a model serves, or why none does, with the figures of the closest try."""
    if has_skill:
        served = [f"{s.step}:{s.served}" for s in steps if s.skill]
        return f"beats last value out of sample at steps {', '.join(served)}"
    tried = [s for s in steps if s.candidate is not None]
    if not tried:
        return "no skill over last value: no candidate could be backtested"
    s = min(tried, key=lambda x: (x.p_value if x.p_value is not None else 1.0))
    ratio = (s.candidate_mae / s.last_value_mae) if s.candidate_mae is not None and s.last_value_mae else None
    ratio_txt = f"{ratio:.2f}x" if ratio is not None else "n/a (last value exact)"
    return (f"no skill over last value: best try {s.candidate} at step {s.step} won {s.wins}, lost {s.losses} of "
            f"{s.n_origins} origins (sign test p={s.p_value:.2g}), MAE {ratio_txt} last value's")


def compose(forecasts: Mapping[str, ModelForecast], decision: GateDecision) -> ModelForecast:
    """The served forecast: each step's point from its model; error paths widened.

    The error paths are the served path's errors at the latest ``calibration_origins``
    backtest origins (out of sample by construction, and exactly the errors the nested
    coverage check widened); with fewer than :data:`MIN_CALIBRATION` of them, last value's
    own error paths.
    """
    lv = forecasts[LAST_VALUE]
    point = np.array([forecasts[name].point[h] for h, name in enumerate(decision.choice)], dtype=float)
    errs = decision.errors[np.isfinite(decision.errors).all(axis=1)][-decision.recent :]
    if errs.shape[0] < MIN_CALIBRATION:
        errs = lv.error_paths
    flags = list(lv.flags)
    if not decision.report.has_skill:
        flags.append("no_skill_over_last_value")
    if decision.report.step_shaped:
        flags.append("step_shaped")
    if decision.scale > 1.0 or decision.stretch > 1.0:
        flags.append("interval_widened")
    return ModelForecast(point=point, error_paths=errs * decision.scale,
                         nonnegative=all(forecasts[n].nonnegative for n in set(decision.choice)),
                         fallback_reason=None if decision.report.has_skill else decision.report.reason,
                         flags=tuple(flags), level_stretch=decision.stretch)


def gate_origins(n: int, horizon: int, rule: SkillRule, *, min_train: int) -> list[int]:
    """The backtest origins of a series of ``n`` points (ascending): every ``step`` back from the last full window."""
    step = rule.step or horizon
    return list(range(n - horizon, min_train - 1, -step))[: rule.origins][::-1]


def drop_missing(decision: GateDecision, available: set[str]) -> GateDecision:
    """Steps whose model has no forecast (it failed to fit) serve last value; the report says so."""
    if all(c in available for c in decision.choice):
        return decision
    steps = [st if st.served in available else st.model_copy(update={"served": LAST_VALUE, "skill": False})
             for st in decision.report.steps]
    has = any(st.skill for st in steps)
    rep = decision.report.model_copy(update={
        "steps": steps, "has_skill": has,
        "reason": decision.report.reason if has else "no skill over last value: the passing model failed to fit"})
    return GateDecision([st.served for st in steps], decision.scale, decision.errors, rep, decision.stretch,
                        decision.recent)
