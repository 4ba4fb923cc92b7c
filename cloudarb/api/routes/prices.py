"""Price history (raw ticks, hourly or daily OHLC) and the live price-change WebSocket."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloudarb.api.deps import SessionDep, Viewer, authenticate, credential_from
from cloudarb.api.errors import ApiError, Invalid, NotFound
from cloudarb.context import Context
from cloudarb.db.types import utcnow
from cloudarb.ingest import events as price_events
from cloudarb.ingest.history import HistoryQuery, history

router = APIRouter(tags=["prices"])

Names = Annotated[list[Annotated[str, Query(min_length=1, max_length=120)]], Query(max_length=50)]
MAX_SPAN = {"raw": timedelta(days=7), "hour": timedelta(days=400), "day": timedelta(days=3660)}


class PointOut(BaseModel):
    t: datetime = Field(description="Tick time (raw) or bucket start (hour/day), UTC.")
    open: float
    high: float
    low: float
    close: float
    ticks: int


class SeriesOut(BaseModel):
    offer_key: str
    provider: str
    region: str
    instance_type: str
    gpu_model: str
    gpu_count: int
    spot: bool
    points: list[PointOut] = Field(description="USD per instance-hour; divide by gpu_count for per GPU.")


class HistoryOut(BaseModel):
    bucket: Literal["raw", "hour", "day"]
    start: datetime
    end: datetime
    series: list[SeriesOut]


def _aware(ts: datetime, field: str) -> datetime:
    if ts.tzinfo is None:
        raise Invalid(f"{field} needs a time zone (e.g. 2026-07-01T00:00:00Z)", field=field)
    return ts


@router.get("/prices/history", operation_id="price_history", response_model=HistoryOut)
def price_history(
    _: Viewer,
    session: SessionDep,
    offer_key: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    gpu_model: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    provider: Names = [],  # noqa: B006 - FastAPI reads list defaults per request
    region: Names = [],  # noqa: B006
    spot: Annotated[bool | None, Query()] = None,
    start: Annotated[datetime | None, Query(description="Inclusive; default end minus 1 day.")] = None,
    end: Annotated[datetime | None, Query(description="Exclusive; default now.")] = None,
    bucket: Annotated[Literal["raw", "hour", "day"], Query()] = "hour",
    max_offers: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HistoryOut:
    """One offer's history (``offer_key``), or every offer of a GPU model (``gpu_model``, narrowed by
    provider/region/spot). Hourly and daily buckets come from the hourly aggregate."""
    if (offer_key is None) == (gpu_model is None):
        raise Invalid("give exactly one of offer_key or gpu_model", field="offer_key")
    end = _aware(end, "end") if end else utcnow()
    start = _aware(start, "start") if start else end - timedelta(days=1)
    if start >= end:
        raise Invalid("start must be before end", field="start")
    if end - start > MAX_SPAN[bucket]:
        raise Invalid(f"{bucket} buckets cover at most {MAX_SPAN[bucket].days} days per request", field="start")
    query = HistoryQuery(offer_key=offer_key, gpu_model=gpu_model, providers=provider, regions=region, spot=spot,
                         start=start, end=end, bucket=bucket, max_offers=max_offers)
    found = history(session, query)
    if offer_key and not found:
        raise NotFound(f"offer {offer_key} not found")
    return HistoryOut(
        bucket=bucket, start=start, end=end,
        series=[
            SeriesOut(
                offer_key=s.offer.offer_key, provider=s.offer.provider, region=s.offer.region,
                instance_type=s.offer.instance_type, gpu_model=s.offer.gpu_model, gpu_count=s.offer.gpu_count,
                spot=s.offer.spot,
                points=[PointOut(t=p.t, open=p.open, high=p.high, low=p.low, close=p.close, ticks=p.ticks)
                        for p in s.points],
            )
            for s in found
        ],
    )


@router.websocket("/ws/prices")
async def price_stream(
    websocket: WebSocket,
    token: Annotated[str | None, Query(max_length=4000)] = None,
    provider: Annotated[list[str] | None, Query()] = None,
    gpu_model: Annotated[list[str] | None, Query()] = None,
    region: Annotated[list[str] | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """Live price changes: ``{"id", "type": "price", "offer_key", "provider", "region", "gpu_model",
    "old_price_per_hour", "new_price_per_hour", "change_pct", "observed_at", ...}``.

    Filters (repeatable): provider, gpu_model, region. ``after=<id>`` first replays stored events after
    that id (reconnect without a gap). Credentials as /ws/jobs: ``?token=``, a bearer header or X-API-Key;
    close code 4401 for bad credentials.
    """
    ctx: Context = websocket.app.state.ctx
    credential = token or credential_from(websocket.headers.get("authorization"), websocket.headers.get("x-api-key"))
    if not credential:
        await websocket.close(code=4401, reason="missing credentials")
        return
    try:
        await run_in_threadpool(authenticate, ctx, credential)
    except ApiError as exc:
        await websocket.close(code=4401, reason=exc.message[:120])
        return
    wanted = price_events.PriceFilter(
        providers=[p.lower() for p in provider or []], gpu_models=gpu_model or [], regions=region or []
    )
    await websocket.accept()
    async with anyio.create_task_group() as group:

        async def pump() -> None:
            try:
                async for event in price_events.follow(ctx, after_id=after):
                    if wanted.matches(event):
                        await websocket.send_json(event)
            except (WebSocketDisconnect, RuntimeError):  # the client went away mid-send
                pass
            group.cancel_scope.cancel()

        async def until_disconnect() -> None:
            try:
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    continue
            except (WebSocketDisconnect, RuntimeError):
                pass
            group.cancel_scope.cancel()

        group.start_soon(pump)
        group.start_soon(until_disconnect)
