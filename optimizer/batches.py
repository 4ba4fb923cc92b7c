"""A first incumbent for fleet-scale models: integer solves over batches of workloads in turn.

One integer program over tens of thousands of columns finds no feasible point in a minute, but a
few thousand columns solve in a second or two. So workloads are taken in batches (largest LP
cost first); each batch is solved with the earlier batches' instances fixed and the later
batches' demand rows switched off. Every constraint stays enforced on what has been placed so
far: capacity rows see the fixed instances, share caps hold for the running totals (caps that
hold batch by batch hold for the sum), and the capacity and budget rows keep back what the LP
gives to the workloads still to come. The result is feasible for the whole model when every batch is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from optimizer.backends import Backend, LpResult
from optimizer.model import AllocationModel, MatrixModel
from optimizer.tables import BoolArray, FloatArray, group_starts

log = logging.getLogger(__name__)

BATCH_COLUMNS = 3_000


def batched_incumbent(model: MatrixModel, layout: AllocationModel, lp: LpResult, focus: BoolArray,
                      backend: Backend, *, deadline: float, threads: int,
                      batch_columns: int = BATCH_COLUMNS) -> FloatArray | None:
    n_x, ncols = model.n_x, model.shape[1]
    col_w = np.full(ncols, -1, dtype=np.int64)
    col_w[:n_x] = np.tile(layout.pairs.w, layout.T)
    W = layout.workloads.n
    lp_cost = np.bincount(col_w[:n_x], weights=model.c[:n_x] * lp.x[:n_x], minlength=W)
    order = np.argsort(-lp_cost, kind="stable")
    per_w = np.bincount(col_w[:n_x][focus[:n_x]], minlength=W)
    n_batches = max(1, int(np.ceil(per_w.sum() / batch_columns)))
    # Round-robin over the cost order: each batch is a sample of the whole fleet, so the share caps
    # the LP meets in aggregate are met batch by batch too (a batch of workloads confined to one
    # provider could not meet a provider cap on its own).
    batches = [order[j::n_batches] for j in range(n_batches)]
    x = np.zeros(ncols)
    done = np.zeros(W, dtype=bool)
    aux = np.arange(ncols) >= n_x
    demand_rows = _rows_by_workload(model, layout, ("demand", "od_floor", "cut"))
    # Capacity, pool GPUs and budget the LP gives to workloads still to come are held back for them.
    reserved_rows = [g for g in model.groups if g.kind in ("budget", "capacity", "pool")]
    for b, batch in enumerate(batches):
        in_batch = np.zeros(W, dtype=bool)
        in_batch[batch] = True
        later = ~(done | in_batch)
        fixed = (x > 0.5) & ~aux
        cols = (focus & in_batch[np.maximum(col_w, 0)] & ~aux) | fixed | aux
        sub, idx = model.restrict(cols)
        sub.row_lb, sub.row_ub = sub.row_lb.copy(), sub.row_ub.copy()
        off = np.concatenate([demand_rows[w] for w in np.flatnonzero(later)]) if later.any() else np.zeros(0, int)
        sub.row_lb[off], sub.row_ub[off] = -np.inf, np.inf
        reserve = np.floor(lp.x + 1e-6) * (col_w >= 0) * later[np.maximum(col_w, 0)]  # whole instances only
        for g in reserved_rows:
            rows = np.arange(g.start, g.stop)
            sub.row_ub[rows] -= model.A[rows] @ reserve
        is_fixed = fixed[idx]
        sub.var_lb = sub.var_lb.copy()
        sub.var_ub = sub.var_ub.copy()
        sub.var_lb[is_fixed] = x[idx][is_fixed]
        sub.var_ub[is_fixed] = x[idx][is_fixed]
        left = deadline - time.perf_counter()
        if left <= 0.05:
            return None
        hint = np.where(is_fixed, x[idx], np.ceil(lp.x[idx] - 1e-6))
        res = backend.solve_mip(sub, time_limit=max(0.1, left / (len(batches) - b)), relative_gap=1e-2,
                                threads=threads, hint=hint)
        if res.x is None:
            # Widen to every column of the batch's workloads once (capacity the focus set counted
            # on may have gone to earlier batches).
            wide = (in_batch[np.maximum(col_w, 0)] & (col_w >= 0)) | fixed | aux
            sub2, idx2 = model.restrict(wide)
            sub2.row_lb, sub2.row_ub, sub2.var_lb, sub2.var_ub = sub.row_lb, sub.row_ub, sub2.var_lb.copy(), \
                sub2.var_ub.copy()
            fx = fixed[idx2]
            sub2.var_lb[fx] = x[idx2][fx]
            sub2.var_ub[fx] = x[idx2][fx]
            left = deadline - time.perf_counter()
            res = backend.solve_mip(sub2, time_limit=max(0.1, left / (len(batches) - b)), relative_gap=1e-2,
                                    threads=threads)
            idx = idx2
        if res.x is None:
            log.info("batch %d of %d found no integer point (%s)", b + 1, len(batches), res.status)
            return None
        x[idx] = res.x
        done |= in_batch
    return x


def _rows_by_workload(model: MatrixModel, layout: AllocationModel, kinds: tuple[str, ...]) -> list[np.ndarray]:
    index = {wid: i for i, wid in enumerate(layout.workloads.ids)}
    rows: list[list[int]] = [[] for _ in range(layout.workloads.n)]
    for g in model.groups:
        if g.kind in kinds:
            for i, key in enumerate(g.keys):
                rows[index[key]].append(g.start + i)
    return [np.array(r, dtype=np.int64) for r in rows]


def improve_in_batches(model: MatrixModel, layout: AllocationModel, lp: LpResult, incumbent: FloatArray,
                       backend: Backend, *, deadline: float, threads: int, per_workload: int = 8,
                       batch_columns: int = BATCH_COLUMNS,
                       on_improve: Callable[[float], None] | None = None) -> FloatArray:
    """Large-neighbourhood search from a feasible point: batches of workloads are re-solved as small
    integer programs with every other workload's instances fixed at the incumbent.

    Workloads whose incumbent cost most exceeds their LP cost go first. A batch may use its LP
    support, its ``per_workload`` columns of smallest reduced cost and its incumbent columns; the
    incumbent restricted to the batch is feasible for the sub-problem (it is the hint), so each
    accepted batch solution keeps the point feasible for the whole model and only lowers its cost.
    Returns the improved point (the incumbent itself when nothing better is found in time);
    ``on_improve`` receives each new objective as it is found."""
    n_x, ncols = model.n_x, model.shape[1]
    W = layout.workloads.n
    col_w = np.full(ncols, -1, dtype=np.int64)
    col_w[:n_x] = np.tile(layout.pairs.w, layout.T)
    x = incumbent.copy()
    obj = model.objective(x)
    rc = lp.reduced_costs[:n_x]
    order = np.lexsort((rc, col_w[:n_x]))
    rank = np.arange(n_x) - group_starts(col_w[:n_x][order])
    cand = np.zeros(ncols, dtype=bool)
    cand[order[rank < per_workload]] = True
    cand[:n_x] |= lp.x[:n_x] > 1e-7
    excess = np.bincount(col_w[:n_x], weights=model.c[:n_x] * (x[:n_x] - lp.x[:n_x]), minlength=W)
    per_w = np.bincount(col_w[:n_x][cand[:n_x] | (x[:n_x] > 0.5)], minlength=W)
    aux = np.arange(ncols) >= n_x
    w_order = np.argsort(-excess, kind="stable")
    ends = np.searchsorted(np.cumsum(per_w[w_order]), np.arange(batch_columns, int(per_w.sum()) + batch_columns,
                                                                 batch_columns))
    start = 0
    for end in ends.tolist():
        batch = w_order[start : end + 1]
        start = end + 1
        if len(batch) == 0:
            continue
        left = deadline - time.perf_counter()
        if left <= 0.2:
            break
        in_batch = np.zeros(W, dtype=bool)
        in_batch[batch] = True
        mine = in_batch[np.maximum(col_w, 0)] & ~aux
        free = mine & (cand | (x > 0.5))
        fixed = ~mine & ~aux & (x > 0.5)
        sub, idx = model.restrict(free | fixed | aux)
        is_fixed = fixed[idx]
        sub.var_lb, sub.var_ub = sub.var_lb.copy(), sub.var_ub.copy()
        sub.var_lb[is_fixed] = x[idx][is_fixed]
        sub.var_ub[is_fixed] = x[idx][is_fixed]
        res = backend.solve_mip(sub, time_limit=min(left, max(1.0, 0.15 * left)), relative_gap=1e-4,
                                threads=threads, hint=x[idx])
        if res.x is None:
            continue
        trial = x.copy()
        trial[mine] = 0.0
        trial[idx] = res.x
        trial_obj = model.objective(trial)
        if trial_obj < obj - 1e-9 * max(1.0, abs(obj)) and model.violation(trial) <= 1e-6:
            log.debug("batch of %d workloads: %.4f -> %.4f", len(batch), obj, trial_obj)
            x, obj = trial, trial_obj
            if on_improve is not None:
                on_improve(obj)
    return x
