"""Follow one job's events: replay what is stored, then relay live events until the terminal one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from cloudarb.jobs import store

if TYPE_CHECKING:
    from cloudarb.context import Context

POLL_S = 1.0


def _stored(ctx: Context, job_id: str, after: int) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        return store.events_after(session, job_id, after)


def is_terminal(event: dict[str, Any]) -> bool:
    return bool(event.get("type") == "status" and event.get("terminal"))


async def follow(ctx: Context, job_id: str, *, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
    """Yield each event once, in sequence order, ending after the terminal status event.

    The live subscription opens before the stored events are read, so an event published in between
    arrives live; anything the live channel drops (a restart of Redis, a slow consumer) is picked up
    by re-reading the store whenever the channel is quiet for ``POLL_S``.
    """
    last = after_seq
    read_store = True
    async with ctx.bus.subscribe(job_id) as live:
        while True:
            if read_store:
                for event in await asyncio.to_thread(_stored, ctx, job_id, last):
                    last = event["seq"]
                    yield event
                    if is_terminal(event):
                        return
                read_store = False
            event = await live.get(timeout=POLL_S)
            if event is None or event["seq"] > last + 1:
                read_store = True  # quiet channel or a gap: the store has everything published
                continue
            if event["seq"] <= last:
                continue
            last = event["seq"]
            yield event
            if is_terminal(event):
                return
