"""Forecasting: series -> forecasts (quantiles, scenarios) and backtests."""
