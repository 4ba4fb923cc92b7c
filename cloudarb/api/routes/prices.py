"""Price history (raw ticks, hourly or daily OHLC) and the live price-change WebSocket."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from cloudarb.api.deps import SessionDep, Viewer, accept_authenticated
from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.types import utcnow
from cloudarb.errors import InvalidInput, NotFound
from cloudarb.ingest import events as price_events
from cloudarb.ingest.history import HistoryQuery, history, hourly_points_json

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
        raise InvalidInput(f"{field} needs a time zone (e.g. 2026-07-01T00:00:00Z)", field=field)
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
) -> Response:
    """One offer's history (``offer_key``), or every offer of a GPU model (``gpu_model``, narrowed by
    provider/region/spot). Hourly and daily buckets come from the hourly aggregate."""
    if (offer_key is None) == (gpu_model is None):
        raise InvalidInput("give exactly one of offer_key or gpu_model", field="offer_key")
    end = _aware(end, "end") if end else utcnow()
    start = _aware(start, "start") if start else end - timedelta(days=1)
    if start >= end:
        raise InvalidInput("start must be before end", field="start")
    if end - start > MAX_SPAN[bucket]:
        raise InvalidInput(f"{bucket} buckets cover at most {MAX_SPAN[bucket].days} days per request", field="start")
    query = HistoryQuery(offer_key=offer_key, gpu_model=gpu_model, providers=provider, regions=region, spot=spot,
                         start=start, end=end, bucket=bucket, max_offers=max_offers)
    fast = hourly_points_json(session, query)
    if fast is not None:
        offers, arrays = fast
        if offer_key and not offers:
            raise NotFound(f"offer {offer_key} not found")
        series = ",".join(
            json.dumps(_series_meta(o), separators=(",", ":"))[:-1] + ',"points":' + arrays.get(o.offer_key, "[]") + "}"
            for o in offers
        )
        head = json.dumps({"bucket": bucket, "start": _iso(start), "end": _iso(end)}, separators=(",", ":"))[:-1]
        return Response(head + ',"series":[' + series + "]}", media_type="application/json")
    found = history(session, query)
    if offer_key and not found:
        raise NotFound(f"offer {offer_key} not found")
    # Built as plain JSON, not through the response model: 720+ points per series validated twice
    # by pydantic cost more than the query. The shape is exactly HistoryOut (the OpenAPI schema).
    body = {
        "bucket": bucket,
        "start": _iso(start),
        "end": _iso(end),
        "series": [
            {
                **_series_meta(s.offer),
                "points": [
                    {"t": _iso(p.t), "open": p.open, "high": p.high, "low": p.low, "close": p.close,
                     "ticks": p.ticks}
                    for p in s.points
                ],
            }
            for s in found
        ],
    }
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _series_meta(offer: Offer) -> dict[str, Any]:
    return {"offer_key": offer.offer_key, "provider": offer.provider, "region": offer.region,
            "instance_type": offer.instance_type, "gpu_model": offer.gpu_model, "gpu_count": offer.gpu_count,
            "spot": offer.spot}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    that id (reconnect without a gap). Credentials as /ws/jobs (a header, or the ``cloudarb.bearer``
    subprotocol; ``?token=`` for old clients); close code 4401 for bad credentials.
    """
    ctx: Context = websocket.app.state.ctx
    if await accept_authenticated(websocket, token) is None:
        return
    wanted = price_events.PriceFilter(
        providers=[p.lower() for p in provider or []], gpu_models=gpu_model or [], regions=region or []
    )
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
