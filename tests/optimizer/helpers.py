"""Small builders for hand-written optimizer test problems."""

from __future__ import annotations

from typing import Any

from optimizer.schemas import Offer, Problem, Workload


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
