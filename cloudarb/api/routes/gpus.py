"""GPU models: the identity table joined with what the current offers ask (like ``sky show-gpus``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from cloudarb.api.deps import CtxDep, SessionDep, Viewer
from cloudarb.db.types import utcnow
from cloudarb.gpu_names import select
from cloudarb.ingest.stale import stale_prices
from cloudarb.schemas import GpuList, GpuOut, GpuPrice
from cloudarb.storage import offers as offer_store
from ingestion.gpu_specs import GPU_MODELS, LEGACY_NAMES

router = APIRouter(tags=["gpus"])


def _cheapest(groups: list[dict[str, Any]], *, now: datetime) -> GpuPrice | None:
    if not groups:
        return None
    best = min(groups, key=lambda g: (g["min_price_per_gpu_hour"], g["provider"]))
    return GpuPrice(
        price_per_gpu_hour=best["min_price_per_gpu_hour"], provider=best["provider"], observed_at=best["newest"],
        age_s=max(0.0, (now - best["newest"]).total_seconds()),
    )


def gpu_list(
    session: Session, *, names: Sequence[str] = (), include_all: bool = False, stale_after_s: float, now: datetime
) -> GpuList:
    """Each GPU model (those ``names`` mean, else every one) with its providers and cheapest prices;
    models without current offers only with ``include_all`` (or when asked for by name)."""
    wanted = select(list(names), field="gpu_type").models if names else tuple(GPU_MODELS)
    by_model: dict[str, list[dict[str, Any]]] = {}
    for group in offer_store.gpu_price_groups(session):
        model = LEGACY_NAMES.get(group["gpu_model"], group["gpu_model"])
        by_model.setdefault(model, []).append(group)
    items: list[GpuOut] = []
    for name in wanted:
        spec = GPU_MODELS[name]
        groups = by_model.get(name, [])
        if not groups and not (include_all or names):
            continue
        items.append(GpuOut(
            name=name, family=spec.family_name, vendor=spec.vendor, architecture=spec.architecture,
            memory_gb=spec.vram_gb, memory_type=spec.memory_type, form_factor=spec.form_factor,
            aliases=list(spec.aliases), providers=sorted({g["provider"] for g in groups}),
            offers=sum(g["offers"] for g in groups),
            on_demand=_cheapest([g for g in groups if not g["spot"]], now=now),
            spot=_cheapest([g for g in groups if g["spot"]], now=now),
        ))
    newest = offer_store.newest_observation(session)
    return GpuList(items=items, newest_price_at=newest,
                   stale_prices=stale_prices(newest, now=now, max_age_s=stale_after_s))


@router.get("/gpus", operation_id="list_gpus", response_model=GpuList)
def list_gpus(
    _: Viewer,
    ctx: CtxDep,
    session: SessionDep,
    gpu_type: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=120)]],
        Query(max_length=50, description="Only the models these names mean ('a100', 'H100', 'A100 80GB')."),
    ] = [],  # noqa: B006 - FastAPI reads list defaults per request
    include_all: Annotated[bool, Query(alias="all", description="Also models no current offer has.")] = False,
) -> GpuList:
    """GPU models with memory, the providers offering them, the cheapest on-demand and spot price per
    GPU-hour, and how old those prices are."""
    return gpu_list(session, names=gpu_type, include_all=include_all, stale_after_s=ctx.settings.price_stale_after_s,
                    now=utcnow())
