"""Price-change events: persisted in ``price_events`` in the ingest transaction, then broadcast on
the 'prices' channel (in-process or Redis pub/sub) as one message per refresh.

Followers subscribe before reading the store and re-read the store when the channel is quiet or
skips ids, so a dropped broadcast is only late, never lost. Ids come from a sequence, taken at
insert and not at commit: when two refreshes commit out of id order, the later id can be seen
first. A follower therefore keeps every id it has not seen below the highest delivered one as a
hole, re-reads the store while holes are open, delivers a late event when its transaction
commits, and gives a hole up after ``GAP_WAIT_S`` (a rolled-back insert leaves one for ever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from cloudarb.db.models import PriceEvent
from cloudarb.db.types import utcnow
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
MAX_HOLES = 10_000
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


def _read(ctx: Context, after_id: int) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        return stored_after(session, after_id)


def _last(ctx: Context) -> int:
    with ctx.db.session() as session:
        return last_id(session)


class Cursor:
    """Which event ids a follower has delivered: every id <= ``floor`` is delivered or given up;
    above it, ``seen`` holds the delivered ids and ``holes`` the missing ones (with when each was
    first missed). Pure bookkeeping, no I/O."""

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.top = floor
        self.seen: set[int] = set()
        self.holes: dict[int, float] = {}

    def fresh(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The not yet delivered events among ``events``, in id order."""
        return sorted((e for e in events if e["id"] > self.floor and e["id"] not in self.seen),
                      key=lambda e: e["id"])

    def contiguous(self, events: Sequence[dict[str, Any]]) -> bool:
        """Whether delivering ``events`` (fresh, in id order) leaves no hole and fills none."""
        return not self.holes and bool(events) and events[0]["id"] == self.top + 1 and all(
            b["id"] == a["id"] + 1 for a, b in zip(events, events[1:], strict=False))

    def mark(self, event_id: int, now: float) -> None:
        self.seen.add(event_id)
        self.holes.pop(event_id, None)
        if event_id > self.top:
            if event_id - self.top - 1 <= MAX_HOLES:
                for missing in range(self.top + 1, event_id):
                    self.holes.setdefault(missing, now)
            self.top = event_id
        self._advance()

    def expire(self, now: float) -> None:
        """Give up holes older than ``GAP_WAIT_S``."""
        for missing in [i for i, since in self.holes.items() if now - since >= GAP_WAIT_S]:
            del self.holes[missing]
        self._advance()

    def _advance(self) -> None:
        self.floor = min(self.holes) - 1 if self.holes else self.top
        self.seen = {i for i in self.seen if i > self.floor}


async def follow(ctx: Context, *, after_id: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """Yield every price event once: those after ``after_id`` (None = only new ones), then live ones,
    forever (the caller stops iterating). Events come in id order, except that an event whose
    transaction committed after a higher id's comes as soon as it is visible (see the module doc)."""
    async with ctx.bus.subscribe(CHANNEL) as live:
        cursor = Cursor(after_id if after_id is not None else await asyncio.to_thread(_last, ctx))
        read_store = after_id is not None
        while True:
            if read_store or cursor.holes:
                for event in cursor.fresh(await asyncio.to_thread(_read, ctx, cursor.floor)):
                    cursor.mark(event["id"], time.monotonic())
                    yield event
                read_store = False
            cursor.expire(time.monotonic())
            message = await live.get(timeout=GAP_POLL_S if cursor.holes else POLL_S)
            if message is None:
                read_store = True
                continue
            batch = cursor.fresh(message.get("events", []))
            if batch and not cursor.contiguous(batch):
                read_store = True  # something in between was missed (or is still committing)
                continue
            for event in batch:
                cursor.mark(event["id"], time.monotonic())
                yield event
