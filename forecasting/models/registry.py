"""Explicit registry of models: name -> class. Lookup errors name the valid keys."""

from __future__ import annotations

from typing import Any

from forecasting.errors import UnknownModelError
from forecasting.models.base import Forecaster
from forecasting.models.baselines import LastValue, SeasonalNaive
from forecasting.models.ets import ETS
from forecasting.models.hw_grid import HoltWintersGrid
from forecasting.models.lag_ridge import LagRidge
from forecasting.models.profile import DayProfile
from forecasting.models.prophet_model import ProphetModel
from forecasting.models.state import LastState, StateArrivals

MODELS: dict[str, type[Forecaster]] = {
    LastValue.name: LastValue,
    SeasonalNaive.name: SeasonalNaive,
    LastState.name: LastState,
    StateArrivals.name: StateArrivals,
    DayProfile.name: DayProfile,
    ETS.name: ETS,
    HoltWintersGrid.name: HoltWintersGrid,
    LagRidge.name: LagRidge,
    ProphetModel.name: ProphetModel,
}


def make_model(name: str, **params: Any) -> Forecaster:
    """Instantiate a registered model with its keyword parameters."""
    try:
        cls = MODELS[name]
    except KeyError as exc:
        raise UnknownModelError(name, valid=list(MODELS)) from exc
    return cls(**params)
