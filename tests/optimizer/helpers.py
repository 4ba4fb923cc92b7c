"""Small builders for hand-written optimizer test problems."""

from __future__ import annotations

from typing import Any

from optimizer.presolve import Classes, Pairs, build_classes, build_pairs
from optimizer.schemas import Offer, Problem, Workload
from optimizer.tables import CompatLookup, OfferTable, WorkloadTable, offer_table, workload_table


def offer(oid: str, provider: str = "p1", *, gpu: str = "A100", gpus: int = 1, price: float = 1.0,
          **kw: Any) -> Offer:
    kw.setdefault("vram_gb_per_gpu", 80.0)
    kw.setdefault("region", "r1")
    return Offer(id=oid, provider=provider, gpu_model=gpu, gpus_per_instance=gpus, price_per_hour=price, **kw)


def workload(wid: str, gpus_min: int, **kw: Any) -> Workload:
    return Workload(id=wid, gpus_min=gpus_min, **kw)


def problem(offers: list[Offer], workloads: list[Workload], **kw: Any) -> Problem:
    return Problem(offers=offers, workloads=workloads, **kw)


def by_offer(solution: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in solution.allocations:
        out[line.offer_id] = out.get(line.offer_id, 0) + line.instances
    return out


def model_parts(p: Problem) -> tuple[OfferTable, WorkloadTable, CompatLookup, Classes, Pairs]:
    """The solver's inputs to a model of ``p``: tables, compatibility, merged classes and pairs."""
    of = offer_table(p)
    wl = workload_table(p, of)
    lookup = CompatLookup.build(p, of, wl)
    classes = build_classes(p, lookup, enabled=True)
    return of, wl, lookup, classes, build_pairs(p, lookup, classes)
