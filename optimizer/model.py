"""The allocation model as one sparse matrix, built from small constraint and objective parts
(the mathematics is in the ``AllocationModel`` docstring, in the order of the code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from optimizer.cuts import WorkloadCuts
from optimizer.placement import combos
from optimizer.presolve import Classes, Pairs
from optimizer.schemas import Problem
from optimizer.tables import BoolArray, FloatArray, IntArray, OfferTable, WorkloadTable

if TYPE_CHECKING:
    import scipy.sparse as sp

INF = np.inf
PERF_TIEBREAK = 1e-6


@dataclass(frozen=True)
class RowGroup:
    """A block of rows of one kind; ``keys[i]`` names the entity of row ``start + i``."""

    kind: str
    start: int
    stop: int
    keys: list[str]
    periods: IntArray


@dataclass
class MatrixModel:
    """min c.x + offset  s.t.  row_lb <= A x <= row_ub, var_lb <= x <= var_ub, x_j integer where marked."""

    c: FloatArray
    A: sp.csr_matrix
    row_lb: FloatArray
    row_ub: FloatArray
    var_lb: FloatArray
    var_ub: FloatArray
    integer: BoolArray
    offset: float
    groups: list[RowGroup] = field(default_factory=list)
    n_x: int = 0  # the first n_x columns are the x_tp

    @property
    def shape(self) -> tuple[int, int]:
        return (self.A.shape[0], self.A.shape[1])

    def objective(self, x: FloatArray) -> float:
        return float(self.c @ x + self.offset)

    def violation(self, x: FloatArray) -> float:
        """Largest absolute violation of any row or bound (0 for a feasible point)."""
        act = self.A @ x
        worst = max(
            float(np.max(self.row_lb - act, initial=0.0)),
            float(np.max(act - self.row_ub, initial=0.0)),
            float(np.max(self.var_lb - x, initial=0.0)),
            float(np.max(x - self.var_ub, initial=0.0)),
        )
        return worst

    def restrict(self, keep: BoolArray) -> tuple[MatrixModel, IntArray]:
        """The same model on a subset of columns (the others fixed at 0); returns it and the kept indices."""
        cols = np.flatnonzero(keep)
        sub = MatrixModel(
            c=self.c[cols],
            A=self.A.tocsc()[:, cols].tocsr(),
            row_lb=self.row_lb,
            row_ub=self.row_ub,
            var_lb=self.var_lb[cols],
            var_ub=self.var_ub[cols],
            integer=self.integer[cols],
            offset=self.offset,
            groups=self.groups,
            n_x=int(np.count_nonzero(cols < self.n_x)),
        )
        return sub, cols


class AllocationModel:
    """Builds the MatrixModel from the presolved tables, part by part.

    Notation. Pairs p = (w, k) join a workload w to an offer class k it may use (see presolve); t = 1..T
    are periods (T = 1 unless offers carry ``price_per_period``). Per pair: u_p usable GPUs per instance
    (whole nodes of ``gpus_per_node`` that fit), g_p GPUs per instance, n_p = u_p when the workload's need
    is variable (``Workload.variable_need``) else 0, N = sum of gpus_min over the other workloads (the
    fleet's fixed need), j = (workload, placement) combos of workloads that must choose one placement
    (``optimizer.placement``), H_j the most usable GPUs combo j can give, c_tp price per instance-hour in
    period t, e_p egress per instance-hour, l_p expected cost of refused launches per instance-hour
    (``tables.launch_costs``), r_p expected interruption cost per instance-hour
    (rate x checkpoint_interval/2 x price), f_p = throughput x u_p x priority, q = capacity pools
    (``Offer.capacity_pool``) with G_q GPUs.

    Variables (in this order):
        x_tp in Z>=0, x_tp <= ub_p        instances of pair p in period t
        G_t >= 0                          GPUs the fleet needs in period t (only with share caps)
        y_tj in {0, 1}                    combo j holds the workload's instances in period t
        d_l >= 0                          instances dropped from current line l (migration)
        m_tp >= 0                         instances of p released between periods t-1 and t (migration)
        eta free, z_s >= 0                CVaR auxiliaries over price scenarios s = 1..S

    Constraints (in code order):
        demand      lo_w <= sum_{p in w} u_p x_tp <= hi_w                              for each w, t
        capacity    sum_{p in k} x_tp <= cap_k                       for classes with finite capacity
        pool        sum_{p of a class in q} g_p x_tp <= G_q                           for each pool q, t
        budget      sum_p c_tp x_tp <= B                                               for each t
        gpus        sum_p n_p x_tp - G_t = -N                     (defines G_t for the share rows)
        provider    sum_{p at provider q} u_p x_tp - s_prov G_t <= 0                   for each q, t
        region      sum_{p at place r} u_p x_tp - s_reg G_t <= 0                       for each r, t
        spot        sum_{p spot} u_p x_tp - s_spot G_t <= 0                            for each t
        place       sum_{p in j} u_p x_tp - H_j y_tj <= 0                              for each j, t
        one_place   sum_{j of w} y_tj <= 1                                for each choosing w, t
        floor       sum_{p in w, on-demand} u_p x_tp - phi sum_{p in w} u_p x_tp >= 0  inference w, t
        migration   x_1p + d_l >= y_l  (current lines);  x_(t-1)p - x_tp - m_tp <= 0  (t >= 2)
        cvar        (1/T) sum_tp c^s_p x_tp - eta - z_s <= 0                           for each s
        cvar cap    eta + sum_s z_s / ((1 - alpha) S) <= CVaR_max
        risk cap    (1/T) sum_tp r_p x_tp <= R_max
        perf floor  (1/T) sum_tp (f_p / priority_w) x_tp >= P_min
        cut         valid inequalities of the integer hull (see ``WorkloadCuts``)     for each w, t

    Shares count needed GPUs: the denominator is what the fleet needs (gpus_min, or the usable GPUs of a
    workload whose need is variable), the numerator the usable GPUs at the capped provider, place or spot
    kind. GPUs rented beyond the need (surplus of whole instances) count against a cap, never for it.

    With ``tighten`` (the default) the demand bounds are rounded to whole nodes,
    ceil(lo_w / n_w) n_w <= sum u_p x_tp <= floor(hi_w / n_w) n_w (every u_p is a multiple of the
    node size n_w, so every integer solution meets the rounded bounds), and the ``cut`` rows are
    added. Neither removes an integer solution; both raise the LP bound.

    Objective (minimized; hourly, averaged over periods; M = migration cost per GPU / horizon hours):
        C = (1/T) sum_tp (c_tp + e_p + l_p) x_tp + M (sum_l g_l d_l + sum_tp g_p m_tp)
        R = (1/T) sum_tp r_p x_tp + (1 - risk_tolerance) (eta + sum_s z_s/((1-alpha) S) - mean_s L_s)
        P = (1/T) sum_tp f_p x_tp
        cost: C      performance: -P + 1e-6 C      weighted: w_c C + w_r R - w_p P
    """

    def __init__(
        self,
        problem: Problem,
        offers: OfferTable,
        workloads: WorkloadTable,
        classes: Classes,
        pairs: Pairs,
        *,
        objective: str | None = None,
        extra_cap: dict[str, float] | None = None,
        tighten: bool = True,
        mir: bool = True,
    ) -> None:
        self.problem = problem
        self.offers = offers
        self.workloads = workloads
        self.classes = classes
        self.pairs = pairs
        self.objective_kind = objective or problem.objective
        self.extra_cap = extra_cap or {}
        self.tighten = tighten
        self.cuts = WorkloadCuts.of(problem, offers, workloads, mir=mir) if tighten else None
        self.T = offers.periods.shape[0] if offers.periods is not None else 1
        self.P = pairs.n
        self.n_x = self.T * self.P
        self._rows: list[tuple[IntArray, IntArray, FloatArray]] = []
        self._lb: list[FloatArray] = []
        self._ub: list[FloatArray] = []
        self._groups: list[RowGroup] = []
        self._nrows = 0
        self._ncols = self.n_x
        self._col_c: list[FloatArray] = []
        self._col_lb: list[FloatArray] = []
        self._col_ub: list[FloatArray] = []
        self._col_int: list[BoolArray] = []
        self.g_col = -1
        self.combos = combos(offers, workloads, pairs)
        self.y_start = -1
        self.d_cols = np.zeros(0, dtype=np.int64)
        self.m_start = -1
        self.eta_col = -1
        self.z_start = -1
        self.offset = 0.0
        self.current_pairs = np.zeros(0, dtype=np.int64)
        self.current_y = np.zeros(0)

    # ----------------------------------------------------------------- helpers
    def price_tp(self) -> FloatArray:
        """(T, P) price per instance-hour of each pair in each period."""
        o = self.pairs.o
        if self.offers.periods is not None:
            return self.offers.periods[:, o]
        return self.offers.price[o][None, :]

    def _xcols(self, p: IntArray, t: IntArray | int) -> IntArray:
        return np.asarray(t, dtype=np.int64) * self.P + p

    def _new_cols(self, n: int, cost: FloatArray | float, lb: float, ub: float, *, cost_like: bool = False,
                  integer: bool = False) -> int:
        """Append n auxiliary columns; ``cost_like`` costs are scaled by the objective's cost weight."""
        start = self._ncols
        self._ncols += n
        scale = self.cost_weight() if cost_like else 1.0
        self._col_c.append(scale * np.broadcast_to(np.asarray(cost, dtype=np.float64), (n,)).copy())
        self._col_lb.append(np.full(n, lb))
        self._col_ub.append(np.full(n, ub))
        self._col_int.append(np.full(n, integer, dtype=bool))
        return start

    def _add(
        self,
        kind: str,
        rows: IntArray,
        cols: IntArray,
        vals: FloatArray,
        lb: FloatArray,
        ub: FloatArray,
        keys: list[str],
        periods: IntArray,
    ) -> None:
        n = len(lb)
        if n == 0:
            return
        self._rows.append((rows + self._nrows, cols, vals))
        self._lb.append(np.asarray(lb, dtype=np.float64))
        self._ub.append(np.asarray(ub, dtype=np.float64))
        self._groups.append(RowGroup(kind, self._nrows, self._nrows + n, keys, periods))
        self._nrows += n

    def _tiled(self, p_rows: IntArray, p: IntArray, vals: FloatArray, n_per_t: int) -> tuple[
        IntArray, IntArray, FloatArray, IntArray
    ]:
        """Repeat a per-period row pattern over all periods: (rows, cols, vals, row period)."""
        T = self.T
        t = np.repeat(np.arange(T), len(p))
        rows = np.tile(p_rows, T) + t * n_per_t
        return rows, self._xcols(np.tile(p, T), t), np.tile(vals, T), np.repeat(np.arange(T), n_per_t)

    # ----------------------------------------------------------------- parts
    def _demand(self) -> None:
        pr, wl = self.pairs, self.workloads
        rows, cols, vals, per = self._tiled(pr.w, np.arange(self.P), pr.u, wl.n)
        lo, hi = (self.cuts.lo, self.cuts.hi) if self.cuts is not None else (wl.lo, wl.hi)
        self._add("demand", rows, cols, vals, np.tile(lo, self.T), np.tile(hi, self.T), wl.ids * self.T, per)

    def cut_entries(self, pairs: Pairs) -> tuple[IntArray, IntArray, FloatArray]:
        """(cut row, pair, coefficient) of the single-period ``cut`` rows over any pair list of this
        problem (lazy pricing calls this on pairs outside the model; the rows do not depend on them)."""
        if self.cuts is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        return self.cuts.entries(pairs.w, pairs.u, ~self.offers.spot[pairs.o])

    def cut_prices(self, y: FloatArray, pairs: Pairs) -> FloatArray:
        """Per pair, the single-period cut rows' part of A^T y for cut duals ``y`` (lazy pricing)."""
        if self.cuts is None:
            return np.zeros(pairs.n)
        return self.cuts.priced(y, pairs.w, pairs.u, ~self.offers.spot[pairs.o])

    def _cuts(self) -> None:
        if self.cuts is None or self.cuts.n == 0:
            return
        r, p, v = self.cut_entries(self.pairs)
        n = self.cuts.n
        rows, cols, vals, per = self._tiled(r, p, v, n)
        keys = [self.workloads.ids[int(w)] for w in self.cuts.w]
        self._add("cut", rows, cols, vals, np.tile(self.cuts.rhs, self.T), np.full(n * self.T, INF), keys * self.T,
                  per)

    def _capacity(self) -> None:
        pr, cl = self.pairs, self.classes
        room = np.bincount(pr.c, weights=pr.ub, minlength=cl.n)
        binds = np.isfinite(cl.cap) & (room > cl.cap)
        idx = np.flatnonzero(binds)
        if len(idx) == 0:
            return
        local = np.full(cl.n, -1, dtype=np.int64)
        local[idx] = np.arange(len(idx))
        sel = np.flatnonzero(binds[pr.c])
        rows, cols, vals, per = self._tiled(local[pr.c[sel]], sel, np.ones(len(sel)), len(idx))
        keys = [self.offers.ids[int(r)] for r in cl.rep[idx]]
        self._add("capacity", rows, cols, vals, np.full(len(idx) * self.T, -INF),
                  np.tile(cl.cap[idx], self.T), keys * self.T, per)

    def _pools(self) -> None:
        """One row per capacity pool and period that the pairs could overfill."""
        pr, of = self.pairs, self.offers
        if not of.pools:
            return
        pool = of.pool[pr.o]
        room = np.bincount(np.maximum(pool, 0), weights=np.where(pool >= 0, pr.g * pr.ub, 0.0),
                           minlength=len(of.pools))
        binds = room > of.pool_gpus
        idx = np.flatnonzero(binds)
        if len(idx) == 0:
            return
        local = np.full(len(of.pools), -1, dtype=np.int64)
        local[idx] = np.arange(len(idx))
        sel = np.flatnonzero((pool >= 0) & binds[np.maximum(pool, 0)])
        rows, cols, vals, per = self._tiled(local[pool[sel]], sel, pr.g[sel], len(idx))
        keys = [of.pools[int(q)] for q in idx]
        self._add("pool", rows, cols, vals, np.full(len(idx) * self.T, -INF), np.tile(of.pool_gpus[idx], self.T),
                  keys * self.T, per)

    def _budget(self) -> None:
        budget = self.extra_cap.get("budget", self.problem.budget_per_hour)
        if budget is None:
            return
        price = self.price_tp()
        t = np.repeat(np.arange(self.T), self.P)
        cols = np.arange(self.n_x)
        vals = np.broadcast_to(price, (self.T, self.P)).ravel()
        self._add("budget", t, cols, vals, np.full(self.T, -INF), np.full(self.T, float(budget)),
                  ["budget"] * self.T, np.arange(self.T))

    def _shares(self) -> None:
        prob, pr, of = self.problem, self.pairs, self.offers
        caps: list[tuple[str, IntArray, list[str], float]] = []
        if prob.max_provider_share is not None and prob.max_provider_share < 1:
            caps.append(("provider", of.provider[pr.o], of.providers, prob.max_provider_share))
        if prob.max_region_share is not None and prob.max_region_share < 1:
            caps.append(("region", of.place[pr.o], [f"{p}/{r}" for p, r in of.places], prob.max_region_share))
        if prob.max_spot_share is not None and prob.max_spot_share < 1:
            spot = of.spot[pr.o]
            caps.append(("spot", np.where(spot, 0, -1), ["spot"], prob.max_spot_share))
        if not caps:
            return
        fixed = float(np.sum(self.workloads.lo[~self.workloads.need_var]))
        self.g_col = self._new_cols(self.T, 0.0, 0.0, fixed + float(pr.need @ pr.ub) + 1.0)
        t_all = np.arange(self.T)
        rows, cols, vals, per = self._tiled(np.zeros(self.P, dtype=np.int64), np.arange(self.P), pr.need, 1)
        rows = np.concatenate([rows, t_all])
        cols = np.concatenate([cols, self.g_col + t_all])
        vals = np.concatenate([vals, -np.ones(self.T)])
        self._add("gpus", rows, cols, vals, np.full(self.T, -fixed), np.full(self.T, -fixed), ["gpus"] * self.T, per)
        for kind, label, names, share in caps:
            used = np.unique(label[label >= 0])
            if len(used) == 0:
                continue
            local = np.full(max(len(names), 1), -1, dtype=np.int64)
            local[used] = np.arange(len(used))
            sel = np.flatnonzero(label >= 0)
            r, c, v, per = self._tiled(local[label[sel]], sel, pr.u[sel], len(used))
            gt = np.repeat(t_all, len(used))
            r = np.concatenate([r, np.arange(len(used) * self.T)])
            c = np.concatenate([c, self.g_col + gt])
            v = np.concatenate([v, np.full(len(used) * self.T, -share)])
            keys = [names[int(i)] for i in used] * self.T
            self._add(kind, r, c, v, np.full(len(used) * self.T, -INF), np.zeros(len(used) * self.T), keys, per)

    def _placement(self) -> None:
        cb, pr = self.combos, self.pairs
        if cb.n == 0:
            return
        J, T = cb.n, self.T
        self.y_start = self._new_cols(T * J, 0.0, 0.0, 1.0, integer=True)
        sel = np.flatnonzero(cb.of_pair >= 0)
        r, c, v, per = self._tiled(cb.of_pair[sel], sel, pr.u[sel], J)
        y_cols = self.y_start + np.arange(T * J)
        r = np.concatenate([r, np.arange(T * J)])
        c = np.concatenate([c, y_cols])
        v = np.concatenate([v, -np.tile(cb.cap, T)])
        names = [f"{self.workloads.ids[int(w)]}@{self.offers.spots[int(k)]}" for w, k in zip(cb.w, cb.key, strict=True)]
        self._add("place", r, c, v, np.full(T * J, -INF), np.zeros(T * J), names * T, np.repeat(np.arange(T), J))
        choosers, local = np.unique(cb.w, return_inverse=True)
        n_w = len(choosers)
        rows = np.tile(local.ravel(), T) + np.repeat(np.arange(T), J) * n_w
        self._add("one_place", rows, y_cols, np.ones(T * J), np.full(T * n_w, -INF), np.ones(T * n_w),
                  [self.workloads.ids[int(w)] for w in choosers] * T, np.repeat(np.arange(T), n_w))

    def _inference_floor(self) -> None:
        phi = self.problem.inference_on_demand_floor
        if phi <= 0:
            return
        pr, wl = self.pairs, self.workloads
        infer = np.flatnonzero(wl.inference)
        if len(infer) == 0:
            return
        local = np.full(wl.n, -1, dtype=np.int64)
        local[infer] = np.arange(len(infer))
        sel = np.flatnonzero(wl.inference[pr.w])
        coef = pr.u[sel] * ((~self.offers.spot[pr.o[sel]]).astype(np.float64) - phi)
        rows, cols, vals, per = self._tiled(local[pr.w[sel]], sel, coef, len(infer))
        self._add("od_floor", rows, cols, vals, np.zeros(len(infer) * self.T),
                  np.full(len(infer) * self.T, INF), [wl.ids[int(i)] for i in infer] * self.T, per)

    def _migration(self) -> None:
        prob, pr = self.problem, self.pairs
        if prob.migration_cost_per_gpu <= 0 or not prob.current_allocation:
            self._current_lines()
            return
        unit = prob.migration_cost_per_gpu / prob.horizon_hours
        self._current_lines(unit)
        if len(self.current_pairs):
            n = len(self.current_pairs)
            start = self._new_cols(n, unit * pr.g[self.current_pairs], 0.0, float(self.current_y.max()), cost_like=True)
            self.d_cols = start + np.arange(n)
            rows = np.concatenate([np.arange(n), np.arange(n)])
            cols = np.concatenate([self.current_pairs, self.d_cols])
            self._add("migration", rows, cols, np.ones(2 * n), self.current_y, np.full(n, INF),
                      [f"{self.workloads.ids[int(pr.w[p])]}@{self.offers.ids[int(pr.o[p])]}"
                       for p in self.current_pairs], np.zeros(n, dtype=np.int64))
        if self.T > 1:
            n = (self.T - 1) * self.P
            self.m_start = self._new_cols(n, np.tile(unit * pr.g, self.T - 1), 0.0, float(pr.ub.max()), cost_like=True)
            r = np.arange(n)
            prev = np.arange(n)
            rows = np.concatenate([r, r, r])
            cols = np.concatenate([prev, prev + self.P, self.m_start + r])
            vals = np.concatenate([np.ones(n), -np.ones(n), -np.ones(n)])
            self._add("switch", rows, cols, vals, np.full(n, -INF), np.zeros(n), ["switch"] * n,
                      np.repeat(np.arange(1, self.T), self.P))

    def _current_lines(self, unit: float = 0.0) -> None:
        """Map current lines to pairs; lines with no pair left are a forced (constant) migration."""
        prob, pr = self.problem, self.pairs
        if not prob.current_allocation:
            return
        widx = {w: i for i, w in enumerate(self.workloads.ids)}
        oidx = {o: i for i, o in enumerate(self.offers.ids)}
        key = {(int(w), int(o)): p for p, (w, o) in enumerate(zip(pr.w, pr.o, strict=True))}
        lines: dict[int, float] = {}
        for line in prob.current_allocation:
            w, o = widx.get(line.workload_id), oidx.get(line.offer_id)
            p = key.get((w, o)) if w is not None and o is not None else None
            if p is None:
                g = self.offers.gpus[o] if o is not None else 1
                self.offset += unit * float(g) * line.instances
            else:
                lines[p] = lines.get(p, 0.0) + line.instances
        self.current_pairs = np.array(sorted(lines), dtype=np.int64)
        self.current_y = np.array([lines[int(p)] for p in self.current_pairs], dtype=np.float64)

    def _cvar(self, weight: float) -> FloatArray:
        """CVaR rows; returns the x coefficients of -mean scenario cost times ``weight``."""
        prob, of = self.problem, self.offers
        cap = self.extra_cap.get("cvar", prob.max_cvar_per_hour)
        if of.scenarios is None or (weight <= 0 and cap is None):
            return np.zeros(self.n_x)
        S = of.scenarios.shape[0]
        k = 1.0 / ((1.0 - prob.cvar_alpha) * S)
        scen = of.scenarios[:, self.pairs.o] / self.T  # (S, P)
        most = float((scen.max(axis=0) * self.pairs.ub).sum() * self.T) + 1.0
        self.eta_col = self._new_cols(1, weight, 0.0, most)
        self.z_start = self._new_cols(S, weight * k, 0.0, most)
        s_idx = np.repeat(np.arange(S), self.n_x)
        x_cols = np.tile(np.arange(self.n_x), S)
        vals = np.tile(scen, (1, self.T)).ravel()
        rows = np.concatenate([s_idx, np.arange(S), np.arange(S)])
        cols = np.concatenate([x_cols, np.full(S, self.eta_col), self.z_start + np.arange(S)])
        vals = np.concatenate([vals, -np.ones(S), -np.ones(S)])
        self._add("cvar", rows, cols, vals, np.full(S, -INF), np.zeros(S), [f"scenario {s}" for s in range(S)],
                  np.zeros(S, dtype=np.int64))
        if cap is not None:
            r = np.zeros(S + 1, dtype=np.int64)
            c = np.concatenate([[self.eta_col], self.z_start + np.arange(S)])
            v = np.concatenate([[1.0], np.full(S, k)])
            self._add("cvar_cap", r, c, v, np.array([-INF]), np.array([float(cap)]), ["cvar"], np.zeros(1, dtype=np.int64))
        return np.tile(-weight * scen.mean(axis=0), self.T)

    def _limits(self) -> None:
        prob, pr = self.problem, self.pairs
        cols = np.arange(self.n_x)
        zero = np.zeros(self.n_x, dtype=np.int64)
        one = np.zeros(1, dtype=np.int64)
        if prob.max_expected_interruption_cost_per_hour is not None:
            vals = np.tile(pr.risk, self.T) / self.T
            self._add("risk_cap", zero, cols, vals, np.array([-INF]),
                      np.array([prob.max_expected_interruption_cost_per_hour]), ["risk"], one)
        if prob.min_performance is not None:
            vals = np.tile(pr.perf / self.workloads.priority[pr.w], self.T) / self.T
            self._add("perf_floor", zero, cols, vals, np.array([prob.min_performance]), np.array([INF]),
                      ["performance"], one)

    # ----------------------------------------------------------------- objective
    def cost_coef(self) -> FloatArray:
        return ((self.price_tp() + self.pairs.extra[None, :]) / self.T).ravel()

    def _objective(self) -> FloatArray:
        prob, pr = self.problem, self.pairs
        cost = self.cost_coef()
        perf = np.tile(pr.perf, self.T) / self.T
        risk = np.tile(pr.risk, self.T) / self.T
        kind = self.objective_kind
        if kind == "cost":
            return cost + self._cvar(0.0)
        if kind == "performance":
            return -perf + PERF_TIEBREAK * cost + self._cvar(0.0)
        w = prob.weights
        tail = w.risk * (1.0 - prob.risk_tolerance)
        return w.cost * cost + w.risk * risk - w.performance * perf + self._cvar(tail)

    def cost_weight(self) -> float:
        """Factor the objective puts on the migration (cost-like) terms."""
        if self.objective_kind == "cost":
            return 1.0
        if self.objective_kind == "performance":
            return PERF_TIEBREAK
        return self.problem.weights.cost

    # ----------------------------------------------------------------- build
    def build(self) -> MatrixModel:
        self._demand()
        self._capacity()
        self._pools()
        self._budget()
        self._shares()
        self._placement()
        self._inference_floor()
        self._cuts()
        self._migration()
        self._limits()
        cx = self._objective()
        cw = self.cost_weight()
        x_ub = np.tile(self.pairs.ub, self.T)
        c = np.concatenate([cx, *self._col_c])
        rows = np.concatenate([r for r, _, _ in self._rows]) if self._rows else np.zeros(0, dtype=np.int64)
        cols = np.concatenate([c_ for _, c_, _ in self._rows]) if self._rows else np.zeros(0, dtype=np.int64)
        vals = np.concatenate([v for _, _, v in self._rows]) if self._rows else np.zeros(0)
        import scipy.sparse as sp  # at first build, not at import: scipy.sparse costs ~0.4 s to load

        A = sp.csr_matrix((vals, (rows, cols)), shape=(self._nrows, self._ncols))
        A.sum_duplicates()
        integer = np.concatenate([np.ones(self.n_x, dtype=bool), *self._col_int])
        return MatrixModel(
            c=c,
            A=A,
            row_lb=np.concatenate(self._lb) if self._lb else np.zeros(0),
            row_ub=np.concatenate(self._ub) if self._ub else np.zeros(0),
            var_lb=np.concatenate([np.zeros(self.n_x)] + self._col_lb),
            var_ub=np.concatenate([x_ub] + self._col_ub),
            integer=integer,
            offset=self.offset * cw,
            groups=self._groups,
            n_x=self.n_x,
        )

    # ----------------------------------------------------------------- completion
    def complete(self, x_part: FloatArray, ncols: int) -> FloatArray:
        """Full column vector from instance counts: the auxiliaries at their cheapest feasible values."""
        x = np.zeros(ncols)
        x[: self.n_x] = x_part
        xt = x_part.reshape(self.T, self.P)
        if self.g_col >= 0:
            fixed = float(np.sum(self.workloads.lo[~self.workloads.need_var]))
            x[self.g_col : self.g_col + self.T] = xt @ self.pairs.need + fixed
        if self.y_start >= 0:
            cb = self.combos
            sel = np.flatnonzero(cb.of_pair >= 0)
            for t in range(self.T):
                held = np.bincount(cb.of_pair[sel], weights=xt[t, sel], minlength=cb.n)
                x[self.y_start + t * cb.n : self.y_start + (t + 1) * cb.n] = (held > 0.5).astype(np.float64)
        if len(self.d_cols):
            x[self.d_cols] = np.maximum(0.0, self.current_y - xt[0, self.current_pairs])
        if self.m_start >= 0:
            n = (self.T - 1) * self.P
            x[self.m_start : self.m_start + n] = np.maximum(0.0, xt[:-1] - xt[1:]).ravel()
        if self.eta_col >= 0 and self.offers.scenarios is not None:
            scen = self.offers.scenarios[:, self.pairs.o] / self.T
            losses = scen @ xt.sum(axis=0)
            eta = cvar_threshold(losses, self.problem.cvar_alpha)
            x[self.eta_col] = eta
            x[self.z_start : self.z_start + len(losses)] = np.maximum(0.0, losses - eta)
        return x


def cvar_threshold(losses: FloatArray, alpha: float) -> float:
    """The eta minimizing eta + E[(L - eta)+]/(1 - alpha) over equally likely losses (the alpha-VaR)."""
    s = np.sort(losses)
    k = int(np.ceil(alpha * len(s))) - 1
    return float(s[min(max(k, 0), len(s) - 1)])


def cvar(losses: FloatArray, alpha: float) -> float:
    """CVaR_alpha of equally likely losses, in Rockafellar-Uryasev form (exact for discrete scenarios)."""
    eta = cvar_threshold(losses, alpha)
    return float(eta + np.maximum(0.0, losses - eta).mean() / (1.0 - alpha))
