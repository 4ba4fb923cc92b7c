"""Forecasting models behind one interface (:class:`forecasting.models.base.Forecaster`)."""
