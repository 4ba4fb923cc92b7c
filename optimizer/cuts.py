"""Valid inequalities of the allocation model's integer hull (rows of kind ``cut``), per workload:
demand rounded to whole nodes, saturated covers, the on-demand cover of inference floors and their
rounding rows. Built from the workloads, the floor and the instance sizes only, so lazy pricing can
price them for any pair by formula."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.schemas import Problem
from optimizer.tables import BoolArray, FloatArray, IntArray, OfferTable, WorkloadTable


@dataclass(frozen=True)
class WorkloadCuts:
    """Valid inequalities per workload that every integer solution satisfies (rows of kind ``cut``).

    Notation: n_w node size, u_p usable GPUs of pair p (a multiple of n_w), lo'_w = ceil(lo_w/n_w) n_w,
    OD_w the on-demand pairs of w, phi the inference on-demand floor. All x_p are integers >= 0.

    Base rows (``divisor`` 0), ``sum_p min(u_p, b) x_p >= b``:
      * cover of w, b = lo'_w, over all pairs of w. Valid: if some x_p >= 1 has u_p >= b, that term
        alone is >= b; otherwise every used pair keeps its coefficient u_p and the row is the
        (rounded) demand minimum. It implies the demand minimum (min(u, b) <= u) and is stronger
        where an instance is bigger than the demand: half an 8-GPU box no longer covers 4 GPUs.
      * on-demand cover of an inference w, b = F_w = ceil(phi lo'_w / n_w) n_w, over OD_w. Valid:
        the floor row gives sum_OD u x >= phi sum u x >= phi lo'_w; the left side is a multiple of
        n_w, so it is >= F_w; then saturate as above.
    MIR rows (``divisor`` d, a usable instance size with n_w < d < b and b mod d != 0) of a base row
    with coefficients a_p = min(u_p, b): with r = b mod d and r_p = a_p mod d,

        sum_p ( floor(a_p/d) + min(r_p, r)/r ) x_p >= ceil(b/d).

    Proof (write alpha_p = a_p/d, beta = b/d, f = r/d in (0, 1), f_p = r_p/d; the row reads
    sum_p (floor(alpha_p) + min(f_p, f)/f) x_p >= ceil(beta)). Let I = sum floor(alpha_p) x_p, an
    integer. If I >= ceil(beta), done (every coefficient is >= floor(alpha_p)). Else I <= floor(beta)
    and m = floor(beta) - I >= 0. The base row gives R = sum f_p x_p >= beta - I = m + f. Split R by
    f_p >= f (count J = sum of those x_p; their part of R is <= J since f_p < 1) and f_p < f (part
    R_s). The MIR part of the left side is J + R_s/f. If J >= m + 1 it is >= m + 1. Otherwise
    R_s >= m + f - J >= f (m - J + 1) because f <= 1 and m - J >= 0, so J + R_s/f >= m + 1. Either
    way the left side is >= I + m + 1 = ceil(beta). (It is the mixed-integer rounding of the base
    row divided by d; with d = 8 it says, e.g., that 12 GPUs need two 8-GPU boxes or one plus a
    4-GPU box, where the LP would buy 1.5 boxes.)

    Rows depend only on the workloads, the floor and the instance sizes present in the offer table,
    never on which pairs a model holds, so lazy pricing can compute the coefficient of any pair.
    """

    w: IntArray  # workload of each row
    base: FloatArray  # b
    divisor: FloatArray  # d, 0 for a base row
    od_only: BoolArray  # row over on-demand pairs only
    lo: FloatArray  # per workload: demand bounds rounded to whole nodes
    hi: FloatArray

    @property
    def n(self) -> int:
        return len(self.w)

    @property
    def rhs(self) -> FloatArray:
        return np.where(self.divisor > 0, np.ceil(self.base / np.maximum(self.divisor, 1.0) - 1e-9), self.base)

    @classmethod
    def of(cls, problem: Problem, offers: OfferTable, workloads: WorkloadTable, *, mir: bool = True) -> WorkloadCuts:
        """The rows for this problem; ``mir=False`` keeps the base rows only (fewer rows, weaker bound)."""
        node = workloads.node.astype(np.float64)
        lo = np.ceil(workloads.lo / node - 1e-9) * node
        hi = np.floor(workloads.hi / node + 1e-9) * node
        # No whole-node count in [lo, hi]: keep the bounds as given, so the LP stays feasible and the
        # integer solve (and its diagnosis) reports the problem in the user's terms.
        bad = hi < lo
        lo, hi = np.where(bad, workloads.lo, lo), np.where(bad, workloads.hi, hi)
        sizes = np.unique(offers.gpus).astype(np.float64)
        usable = np.floor(sizes[None, :] / node[:, None]) * node[:, None]  # (W, sizes)
        biggest = usable.max(axis=1, initial=0.0)
        phi = problem.inference_on_demand_floor
        F = np.where(workloads.inference & (phi > 0), np.ceil(phi * lo / node - 1e-9) * node, 0.0)
        parts: list[tuple[IntArray, FloatArray, FloatArray, bool]] = []
        for b, od, need in ((lo, False, biggest > lo), (F, True, F > 0)):
            ws = np.flatnonzero(need & (b > 0))
            parts.append((ws, b[ws], np.zeros(len(ws)), od))
            if not mir:
                continue
            wi, si = np.nonzero((usable > node[:, None]) & (usable < b[:, None])
                                & (np.mod(b[:, None], np.maximum(usable, 1.0)) > 0.5) & (b[:, None] > 0))
            d = usable[wi, si]
            key = np.unique(np.stack([wi, d.astype(np.int64)], axis=1), axis=0) if len(wi) else np.zeros((0, 2))
            kw = key[:, 0].astype(np.int64)
            parts.append((kw, b[kw], key[:, 1].astype(np.float64), od))
        w = np.concatenate([p[0] for p in parts]).astype(np.int64)
        order = np.argsort(w, kind="stable")
        return cls(
            w=w[order],
            base=np.concatenate([p[1] for p in parts])[order],
            divisor=np.concatenate([p[2] for p in parts])[order],
            od_only=np.concatenate([np.full(len(p[0]), p[3]) for p in parts])[order],
            lo=lo,
            hi=hi,
        )

    def _coef(self, rows: IntArray, a_u: FloatArray) -> FloatArray:
        """Coefficient in cut row ``rows[i]`` of an instance with ``a_u[i]`` usable GPUs (od filter aside)."""
        b, d = self.base[rows], self.divisor[rows]
        a = np.minimum(a_u, b)
        dd = np.maximum(d, 1.0)
        r = np.mod(b, dd)
        mir = np.floor(a / dd + 1e-9) + np.minimum(np.mod(a, dd), r) / np.maximum(r, 1e-12)
        return np.where(d > 0, mir, a)

    def entries(self, pw: IntArray, pu: FloatArray, on_demand: BoolArray) -> tuple[IntArray, IntArray, FloatArray]:
        """(row, pair, coefficient) for pairs given by workload, usable GPUs and on-demand flag."""
        n_w = len(self.lo)
        count = np.bincount(self.w, minlength=n_w)
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        k = count[pw]
        pair = np.repeat(np.arange(len(pw)), k)
        row = np.repeat(first[pw] - np.concatenate([[0], np.cumsum(k)[:-1]]), k) + np.arange(int(k.sum()))
        keep = ~self.od_only[row] | on_demand[pair]
        row, pair = row[keep], pair[keep]
        coef = self._coef(row, pu[pair])
        nz = coef > 0
        return row[nz].astype(np.int64), pair[nz].astype(np.int64), coef[nz]

    def priced(self, y: FloatArray, pw: IntArray, pu: FloatArray, on_demand: BoolArray) -> FloatArray:
        """sum over cut rows of coefficient x dual ``y`` for each pair, i.e. the cut rows' share of
        A^T y, without listing entries: coefficients depend only on (workload, usable GPUs, on-demand),
        so a (workload, GPUs, flag) table is summed once and gathered per pair."""
        if self.n == 0 or len(pw) == 0:
            return np.zeros(len(pw))
        top = int(max(float(pu.max()), 0.0)) + 1
        sizes = np.arange(top, dtype=np.float64)
        coef = self._coef(np.repeat(np.arange(self.n), top), np.tile(sizes, self.n)).reshape(self.n, top)
        table = np.zeros((len(self.lo), top, 2))
        weighted = coef * y[:, None]
        np.add.at(table[:, :, 1], self.w, weighted)  # on-demand pairs: every row
        np.add.at(table[:, :, 0], self.w[~self.od_only], weighted[~self.od_only])  # spot: not the od rows
        return table[pw, np.rint(pu).astype(np.int64), on_demand.astype(np.int64)]
