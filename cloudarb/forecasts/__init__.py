"""Forecasts in the application: stored history -> ``forecasting`` -> stored forecasts -> the optimizer.

Light modules (``keys``, ``store``, ``submit``) import no forecasting engine: the API uses them to read
stored rows and enqueue jobs. ``history``, ``training``, ``jobs``, ``feed`` and ``demand`` run in
workers and import the ``forecasting`` library where they use it.
"""
