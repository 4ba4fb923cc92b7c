"""Solver backends behind one small protocol, listed in an explicit registry.

A backend solves a ``MatrixModel`` (see ``optimizer.model``) as an LP relaxation or as a MIP. The
orchestration in ``optimizer.strategy`` is backend-agnostic, so OR-Tools and PuLP run the same model
through the same phases. Engines are imported only when a backend is first used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from optimizer.errors import BackendUnavailableError
from optimizer.model import MatrixModel
from optimizer.tables import FloatArray

LpStatus = Literal["optimal", "infeasible", "unbounded", "limit", "error"]
MipStatus = Literal["optimal", "feasible", "infeasible", "no_solution", "error"]
LogCallback = Callable[[float, float | None, float | None], None]  # (seconds, incumbent, bound)


@dataclass(frozen=True)
class LpResult:
    status: LpStatus
    x: FloatArray
    objective: float | None
    duals: FloatArray  # d objective / d row bound, one per row
    reduced_costs: FloatArray
    seconds: float
    engine: str


@dataclass(frozen=True)
class MipResult:
    status: MipStatus
    x: FloatArray | None
    objective: float | None
    bound: float | None
    seconds: float
    engine: str


class Backend(Protocol):
    name: str

    def solve_lp(self, model: MatrixModel, *, time_limit: float, engine: str = "auto") -> LpResult: ...

    def solve_mip(
        self,
        model: MatrixModel,
        *,
        time_limit: float,
        relative_gap: float,
        threads: int,
        hint: FloatArray | None = None,
        engine: str = "auto",
        on_log: LogCallback | None = None,
    ) -> MipResult: ...


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


def empty_lp(model: MatrixModel, status: LpStatus, seconds: float, engine: str) -> LpResult:
    n, m = model.shape[1], model.shape[0]
    return LpResult(status, np.zeros(n), None, np.zeros(m), np.zeros(n), seconds, engine)
