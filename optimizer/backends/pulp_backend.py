"""PuLP backend: the same MatrixModel through PuLP, solved by CBC (or any solver PuLP can reach).

PuLP's value is reaching solvers the user has licensed (Gurobi, CPLEX, ...) through one API; CBC is
the default. Building a PuLP model goes through Python objects per coefficient, so this backend is
meant for small and medium models; the OR-Tools backend takes the sparse matrix in one call.

Status is read from ``sol_status``, not ``status``: PuLP reports ``status == Optimal`` for CBC runs
stopped by the time limit with a feasible solution, and only ``sol_status`` tells
``LpSolutionIntegerFeasible`` (stopped, not proven) from ``LpSolutionOptimal``. The bound of a
stopped run is read from CBC's log.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from typing import Any

import numpy as np

from optimizer.backends.base import LogCallback, LpResult, MipResult, empty_lp
from optimizer.errors import SolverFailedError
from optimizer.model import MatrixModel
from optimizer.tables import FloatArray

log = logging.getLogger(__name__)

_BOUND = re.compile(r"(?:Lower bound|Best possible):\s*([-+0-9.eE]+)")


def _build(model: MatrixModel, *, integer: bool) -> tuple[Any, list[Any], list[tuple[Any | None, Any | None]]]:
    import pulp

    prob = pulp.LpProblem("cloudarb", pulp.LpMinimize)
    n = model.shape[1]
    # PuLP >= 3.3 attaches variables to the model (the old constructor is deprecated there).
    make = getattr(prob, "add_variable", None) or pulp.LpVariable
    xs = [
        make(
            f"x{j}",
            None if not np.isfinite(model.var_lb[j]) else float(model.var_lb[j]),
            None if not np.isfinite(model.var_ub[j]) else float(model.var_ub[j]),
            cat=pulp.LpInteger if integer and model.integer[j] else pulp.LpContinuous,
        )
        for j in range(n)
    ]
    prob += pulp.LpAffineExpression(zip(xs, model.c.tolist(), strict=True), constant=model.offset)
    A = model.A.tocsr()
    rows: list[tuple[Any | None, Any | None]] = []
    for i in range(A.shape[0]):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        expr = pulp.LpAffineExpression([(xs[j], float(v)) for j, v in zip(A.indices[lo:hi].tolist(),
                                                                              A.data[lo:hi].tolist(), strict=True)])
        rlb, rub = float(model.row_lb[i]), float(model.row_ub[i])
        lo_c = hi_c = None
        if np.isfinite(rlb) and np.isfinite(rub) and rlb == rub:
            lo_c = pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}_eq", rlb)
            prob += lo_c
        else:
            if np.isfinite(rlb):
                lo_c = pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}_lo", rlb)
                prob += lo_c
            if np.isfinite(rub):
                hi_c = pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}_hi", rub)
                prob += hi_c
        rows.append((lo_c, hi_c))
    return prob, xs, rows


def _solver(time_limit: float, gap: float | None, threads: int, warm: bool, log_path: str | None) -> Any:
    import pulp

    kwargs: dict[str, Any] = {"msg": False, "timeLimit": max(1, int(np.ceil(time_limit))), "threads": threads}
    if gap is not None:
        kwargs["gapRel"] = gap
    if warm:
        kwargs["warmStart"] = True
    if log_path:
        kwargs["logPath"] = log_path
    return pulp.PULP_CBC_CMD(**kwargs)


class PulpBackend:
    name = "pulp"

    def solve_lp(self, model: MatrixModel, *, time_limit: float, engine: str = "auto") -> LpResult:
        import pulp

        start = time.perf_counter()
        prob, xs, rows = _build(model, integer=False)
        try:
            prob.solve(_solver(time_limit, None, 1, False, None))
        except pulp.PulpSolverError as exc:
            raise SolverFailedError(f"CBC failed: {exc}", backend=self.name) from exc
        seconds = time.perf_counter() - start
        st = prob.status
        if st == pulp.LpStatusInfeasible:
            return empty_lp(model, "infeasible", seconds, "cbc")
        if st == pulp.LpStatusUnbounded:
            return empty_lp(model, "unbounded", seconds, "cbc")
        if prob.sol_status != pulp.LpSolutionOptimal:
            return empty_lp(model, "limit", seconds, "cbc")
        x = np.array([v.varValue or 0.0 for v in xs])
        duals = np.array([(lo.pi or 0.0 if lo is not None else 0.0) + (hi.pi or 0.0 if hi is not None else 0.0)
                          for lo, hi in rows])
        rc = np.array([v.dj or 0.0 for v in xs])
        return LpResult("optimal", x, float(model.c @ x + model.offset), duals, rc, seconds, "cbc")

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
    ) -> MipResult:
        import pulp

        start = time.perf_counter()
        prob, xs, _ = _build(model, integer=True)
        if hint is not None:
            for v, h in zip(xs, hint.tolist(), strict=True):
                v.setInitialValue(round(h) if v.cat == pulp.LpInteger else h)
        fd, log_path = tempfile.mkstemp(suffix=".log", prefix="cloudarb-cbc-")
        os.close(fd)
        try:
            try:
                prob.solve(_solver(time_limit, relative_gap, threads, hint is not None, log_path))
            except pulp.PulpSolverError as exc:
                raise SolverFailedError(f"CBC failed: {exc}", backend=self.name) from exc
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        finally:
            os.unlink(log_path)
        seconds = time.perf_counter() - start
        sol = prob.sol_status
        if sol == pulp.LpSolutionInfeasible or prob.status == pulp.LpStatusInfeasible:
            return MipResult("infeasible", None, None, None, seconds, "cbc")
        if sol not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return MipResult("no_solution", None, None, None, seconds, "cbc")
        x = np.array([v.varValue or 0.0 for v in xs])
        x[model.integer] = np.round(x[model.integer])
        obj = float(model.c @ x + model.offset)
        if sol == pulp.LpSolutionOptimal:
            return MipResult("optimal", x, obj, obj, seconds, "cbc")
        found = _BOUND.findall(text)
        bound = float(found[-1]) if found else None
        return MipResult("feasible", x, obj, bound, seconds, "cbc")
