"""What every solver backend shares: the result types, the protocol and the empty LP result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

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

def empty_lp(model: MatrixModel, status: LpStatus, seconds: float, engine: str) -> LpResult:
    n, m = model.shape[1], model.shape[0]
    return LpResult(status, np.zeros(n), None, np.zeros(m), np.zeros(n), seconds, engine)
