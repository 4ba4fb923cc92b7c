"""The current offers: latest price per offer, with how old that price is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from cloudarb.api.deps import CtxDep, PageDep, SessionDep, Viewer
from cloudarb.db.types import utcnow
from cloudarb.forecasts.risk_cache import offer_view
from cloudarb.gpu_names import select, stored_names
from cloudarb.ingest.schedule import freshness_limits
from cloudarb.ingest.stale import stale_prices
from cloudarb.schemas import OfferPage
from cloudarb.storage import offers as offer_store

router = APIRouter(tags=["offers"])

Names = Annotated[list[Annotated[str, Query(min_length=1, max_length=120)]], Query(max_length=50)]


def offer_page(
    rows: list[dict[str, Any]], total: int, *, limit: int, offset: int, now: datetime,
    newest: datetime | None = None, stale_after_s: float | None = None, risk: dict[str, dict[str, Any]] | None = None,
) -> OfferPage:
    """Validate a page of offer rows once, each with the age of its price (and a stale warning)."""
    risk = risk or {}
    items = [{**row, "age_s": max(0.0, (now - row["observed_at"]).total_seconds()),
              "risk": risk.get(row["offer_key"])} for row in rows]
    stale = stale_prices(newest, now=now, max_age_s=stale_after_s) if stale_after_s is not None else None
    return OfferPage.model_validate(
        {"items": items, "total": total, "limit": limit, "offset": offset, "newest_price_at": newest,
         "stale_prices": stale}
    )


def offer_filter(
    *, provider: list[str], gpu_type: list[str], min_gpus: int | None = None, field: str = "gpu_type", **rest: Any
) -> offer_store.OfferFilter:
    """The storage filter for names people type: GPU names resolved through the identity table
    ('a100' = every A100, 'H100:8' = 8-GPU instances of H100s), providers as 'key' or 'key:seller'."""
    gpu_models: list[str] = []
    if gpu_type:
        chosen = select(gpu_type, field=field)
        gpu_models = stored_names(chosen.models)
        if chosen.gpus_per_instance is not None:
            min_gpus = max(min_gpus or 0, chosen.gpus_per_instance)
    return offer_store.OfferFilter(
        providers=[p.lower() for p in provider], gpu_models=gpu_models, min_gpus=min_gpus, **rest
    )


@router.get("/offers", operation_id="list_offers", response_model=OfferPage)
def list_offers(
    _: Viewer,
    ctx: CtxDep,
    session: SessionDep,
    page: PageDep,
    provider: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=120)]],
        Query(max_length=50, description="Provider key, or one seller of a marketplace as 'provider:seller'."),
    ] = [],  # noqa: B006 - FastAPI reads list defaults per request
    gpu_type: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=120)]],
        Query(max_length=50, description="GPU name as people type it: 'a100', 'H100', 'A100 80GB', 'H100:8'."),
    ] = [],  # noqa: B006
    region: Names = [],  # noqa: B006
    min_vram_gb: Annotated[float | None, Query(ge=0, le=10_000)] = None,
    min_gpus: Annotated[int | None, Query(ge=1, le=64)] = None,
    max_price: Annotated[float | None, Query(ge=0, description="Max USD per instance-hour.")] = None,
    max_price_per_gpu: Annotated[float | None, Query(ge=0, description="Max USD per GPU-hour.")] = None,
    spot: Annotated[bool | None, Query()] = None,
    max_age_s: Annotated[int | None, Query(ge=1, description="Exclude offers priced longer ago.")] = None,
    fresh: Annotated[bool, Query(description="Exclude offers older than their provider's configured max age.")] = False,
    sort: offer_store.SortKey = "price_per_gpu_hour",
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    filters = offer_filter(
        provider=provider,
        gpu_type=gpu_type,
        regions=region,
        min_vram_gb=min_vram_gb,
        min_gpus=min_gpus,
        max_price_per_hour=max_price,
        max_price_per_gpu_hour=max_price_per_gpu,
        spot=spot,
        max_age=timedelta(seconds=max_age_s) if max_age_s else None,
        max_age_by_provider=freshness_limits(ctx.settings) if fresh else {},
    )
    rows, total = offer_store.list_offers(
        session, filters=filters, sort=sort, descending=order == "desc", limit=page.limit, offset=page.offset
    )
    now = utcnow()
    body = offer_page(rows, total, limit=page.limit, offset=page.offset, now=now,
                      newest=offer_store.newest_observation(session),
                      stale_after_s=ctx.settings.price_stale_after_s,
                      risk=offer_view(session, ctx.settings, rows, now=now))
    # already validated: serialize once here instead of letting FastAPI validate and encode it again
    return Response(body.model_dump_json(), media_type="application/json")
