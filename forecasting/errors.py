"""One rooted error tree for the forecasting library.

Callers (the application's jobs) catch :class:`ForecastingError` and map subclasses to
their own statuses; foreign exceptions (pandas parsing, statsmodels, prophet, sklearn) are
translated at the edge with ``raise ... from exc`` so nothing library-shaped leaks out.
"""

from __future__ import annotations


class ForecastingError(Exception):
    """Root of every error raised on purpose by :mod:`forecasting`."""


class DataError(ForecastingError):
    """Input data is malformed (unparseable file, missing column, bad series)."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message if source is None else f"{source}: {message}")
        self.source = source


class InsufficientDataError(ForecastingError):
    """A series is too short (or too empty) for the requested operation."""

    def __init__(self, message: str, *, n_obs: int, required: int) -> None:
        super().__init__(f"{message} (have {n_obs} observations, need {required})")
        self.n_obs = n_obs
        self.required = required


class ModelFitError(ForecastingError):
    """A model failed to fit or predict; the selector falls back to a simpler model."""

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(f"{model}: {message}")
        self.model = model


class UnknownModelError(ForecastingError):
    """A model name is not in the registry; the message names the valid keys."""

    def __init__(self, name: str, *, valid: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; valid models: {', '.join(sorted(valid))}")
        self.name = name
        self.valid = valid
