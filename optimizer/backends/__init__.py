"""Solver backends behind one small protocol, listed in an explicit registry.

A backend solves a ``MatrixModel`` (see ``optimizer.model``) as an LP relaxation or as a MIP. The
orchestration in ``optimizer.strategy`` is backend-agnostic, so OR-Tools and PuLP run the same model
through the same phases. Engines are imported only when a backend is first used.
"""

from __future__ import annotations

from collections.abc import Callable

from optimizer.backends.base import (
    Backend,
    LogCallback,
    LpResult,
    LpStatus,
    MipResult,
    MipStatus,
    empty_lp,
)
from optimizer.errors import BackendUnavailableError

__all__ = ["BACKENDS", "Backend", "LogCallback", "LpResult", "LpStatus", "MipResult", "MipStatus", "empty_lp",
           "get_backend"]

def _ortools() -> Backend:
    from optimizer.backends.ortools_backend import OrToolsBackend

    return OrToolsBackend()


def _pulp() -> Backend:
    from optimizer.backends.pulp_backend import PulpBackend

    return PulpBackend()


BACKENDS: dict[str, Callable[[], Backend]] = {"ortools": _ortools, "pulp": _pulp}


def get_backend(name: str) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError as exc:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}", backend=name
        ) from exc
    try:
        return factory()
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} is not installed: {exc}", backend=name) from exc

