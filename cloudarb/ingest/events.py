"""Price-change events: persisted in ``price_events`` in the ingest transaction, then broadcast on
the 'prices' channel (in-process or Redis pub/sub) as one message per refresh.

Followers use the one follow loop of ``cloudarb.events.follow``: they subscribe before reading the
store and re-read it when the channel is quiet or skips ids, so a dropped broadcast is only late,
never lost. Ids come from a sequence, taken at insert and not at commit: when two refreshes commit
out of id order, the later id can be seen first; the loop waits ``GAP_WAIT_S`` for a missing id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from cloudarb.db.models import PriceEvent
from cloudarb.db.types import utcnow
from cloudarb.events.follow import Stream
from cloudarb.events.follow import follow as follow_stream
from cloudarb.ingest.bulk import PriceChange

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)

CHANNEL = "prices"
POLL_S = 1.0
GAP_POLL_S = 0.2
"""Store re-read interval while an id below the highest delivered one is still missing."""
GAP_WAIT_S = 10.0
"""How long a missing id is waited for; longer than any ingest transaction's commit takes."""
_FIELDS = ("offer_key", "provider", "region", "gpu_model", "instance_type", "spot", "gpu_count",
           "old_price_per_hour", "new_price_per_hour", "observed_at")


@dataclass(frozen=True, kw_only=True)
class PriceFilter:
    providers: Sequence[str] = ()
    gpu_models: Sequence[str] = ()
    regions: Sequence[str] = ()

    def matches(self, event: dict[str, Any]) -> bool:
        if self.providers and event["provider"] not in self.providers:
            return False
        if self.gpu_models and event["gpu_model"].lower() not in {g.lower() for g in self.gpu_models}:
            return False
        return not self.regions or event["region"] in self.regions


def event_dict(row: PriceEvent) -> dict[str, Any]:
    old, new = row.old_price_per_hour, row.new_price_per_hour
    return {
        "id": row.id,
        "type": "price",
        **{f: getattr(row, f) for f in _FIELDS if f != "observed_at"},
        "price_per_gpu_hour": new / row.gpu_count,
        "change_pct": None if not old else round((new - old) / old * 100, 4),
        "observed_at": row.observed_at.isoformat(),
        "ts": row.created_at.isoformat(),
    }


def persist(session: Session, changes: Sequence[PriceChange]) -> list[dict[str, Any]]:
    """Store the changes (in the caller's transaction) and return them as subscribers see them."""
    if not changes:
        return []
    now = utcnow()
    rows = [{**{f: getattr(c, f) for f in _FIELDS}, "created_at": now} for c in changes]
    stored = session.scalars(insert(PriceEvent).returning(PriceEvent, sort_by_parameter_order=True), rows).all()
    return [event_dict(r) for r in stored]


def broadcast(ctx: Context, events: list[dict[str, Any]]) -> None:
    """Publish stored events; a failure only delays them (followers re-read the store)."""
    if not events:
        return
    try:
        ctx.bus.publish(CHANNEL, {"type": "prices", "events": events})
    except Exception:
        log.warning("price event broadcast failed; followers will read them from the store", exc_info=True)


def stored_after(session: Session, after_id: int, *, limit: int = 5000) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(PriceEvent).where(PriceEvent.id > after_id).order_by(PriceEvent.id).limit(limit)
    ).all()
    return [event_dict(r) for r in rows]


def last_id(session: Session) -> int:
    return int(session.scalar(select(func.max(PriceEvent.id))) or 0)


def prune(session: Session, *, older_than: timedelta, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - older_than
    result = session.execute(delete(PriceEvent).where(PriceEvent.created_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _last(ctx: Context) -> int:
    with ctx.db.session() as session:
        return last_id(session)


def price_stream(ctx: Context) -> Stream:
    def read_after(after_id: int) -> list[dict[str, Any]]:
        with ctx.db.session() as session:
            return stored_after(session, after_id)

    return Stream(channel=CHANNEL, read_after=read_after, key="id", unpack=lambda m: list(m.get("events", [])),
                  poll_s=POLL_S, gap_poll_s=GAP_POLL_S, gap_wait_s=GAP_WAIT_S)


async def follow(ctx: Context, *, after_id: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """Yield every price event once: those after ``after_id`` (None = only new ones), then live ones,
    forever (the caller stops iterating). Events come in id order, except that an event whose
    transaction committed after a higher id's comes as soon as it is visible (see the module doc)."""
    start = after_id if after_id is not None else await asyncio.to_thread(_last, ctx)
    async for event in follow_stream(ctx.bus, price_stream(ctx), after=start):
        yield event
