"""LP relaxation by column generation, for models with too many pair columns to solve at once.

Most (workload, offer) pairs are never worth buying: a workload fills its demand from a handful of
the cheapest usable offers. So the LP is first solved over a seed set (per demand row the K
columns cheapest per usable GPU, plus the cheapest per provider so share caps stay satisfiable),
then priced: reduced costs c - A^T y of every column come from one sparse product with the full
matrix, and columns with negative reduced cost join the set. When none is left the restricted LP
optimum is the full LP optimum, with duals and reduced costs valid for every column, which the
Lagrangian bound and the fixing arguments downstream rely on.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from optimizer.backends import Backend, LpResult
from optimizer.model import AllocationModel, MatrixModel
from optimizer.tables import BoolArray, group_starts

log = logging.getLogger(__name__)

COLGEN_MIN_COLUMNS = 5_000
_SEED_PER_ROW = 25
_SEED_PER_PROVIDER = 1
_MAX_ROUNDS = 30


def seed_columns(model: MatrixModel, layout: AllocationModel, per_row: int) -> BoolArray:
    n_x, P, T, W = model.n_x, layout.P, layout.T, layout.workloads.n
    row = np.tile(layout.pairs.w, T) + np.repeat(np.arange(T), P) * W
    unit = model.c[:n_x] / np.tile(layout.pairs.u, T)
    prov = np.tile(layout.offers.provider[layout.pairs.o], T)
    spot = np.tile(layout.offers.spot[layout.pairs.o], T).astype(np.int64)
    keep = np.zeros(model.shape[1], dtype=bool)
    keep[n_x:] = True
    size = np.tile(layout.pairs.u, T).astype(np.int64)
    for key, k in ((row, per_row), (row * 2 + spot, per_row // 2),
                   (row * (len(layout.offers.providers) + 1) + prov, _SEED_PER_PROVIDER),
                   ((row * 2 + spot) * 128 + size, 1)):
        order = np.lexsort((unit, key))
        sk = key[order]
        first = group_starts(sk)
        keep[order[(np.arange(n_x) - first) < k]] = True
    return keep


def solve_lp_colgen(model: MatrixModel, layout: AllocationModel, backend: Backend, *, time_limit: float,
                    engine: str = "auto") -> LpResult:
    start = time.perf_counter()
    n = model.shape[1]
    AT = model.A.T.tocsr()
    per_row = _SEED_PER_ROW
    active = seed_columns(model, layout, per_row)
    seconds_lp = 0.0
    for rnd in range(_MAX_ROUNDS):
        left = time_limit - (time.perf_counter() - start)
        if left <= 0.05:
            break
        sub, cols = model.restrict(active)
        res = backend.solve_lp(sub, time_limit=left, engine=engine)
        seconds_lp += res.seconds
        if res.status == "infeasible":
            if np.all(active):
                return LpResult("infeasible", np.zeros(n), None, res.duals, np.zeros(n), time.perf_counter() - start,
                                res.engine)
            per_row *= 4
            active |= seed_columns(model, layout, per_row)
            if per_row > 400:
                active[:] = True
            continue
        if res.status != "optimal" or res.objective is None:
            return LpResult(res.status, np.zeros(n), None, np.zeros(model.shape[0]), np.zeros(n),
                            time.perf_counter() - start, res.engine)
        rc = model.c - AT @ res.duals
        tol = 1e-7 * max(1.0, float(np.abs(model.c).max(initial=1.0)))
        entering = np.flatnonzero((rc < -tol) & ~active)
        log.debug("colgen round %d: %d active columns, objective %.6f, %d entering", rnd, len(cols),
                  res.objective, len(entering))
        if len(entering) == 0:
            x = np.zeros(n)
            x[cols] = res.x
            return LpResult("optimal", x, res.objective, res.duals, rc, time.perf_counter() - start, res.engine)
        room = max(5000, len(cols) // 2)
        if len(entering) > room:
            entering = entering[np.argsort(rc[entering])[:room]]
        active[entering] = True
    return LpResult("limit", np.zeros(n), None, np.zeros(model.shape[0]), np.zeros(n), time.perf_counter() - start,
                    "colgen")
