"""A job's event stream: replayed from the job's stored events, then live, until its terminal status.

Used by the job WebSocket route and by the CLI in embedded mode (which follows the in-process bus
instead of polling the database).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from cloudarb.events.follow import Event, Stream, follow
from cloudarb.jobs import store

if TYPE_CHECKING:
    from cloudarb.context import Context


def is_terminal_status(event: Event) -> bool:
    return bool(event.get("type") == "status" and event.get("terminal"))


def job_stream(ctx: Context, job_id: str) -> Stream:
    def read_after(after: int) -> list[Event]:
        with ctx.db.session() as session:
            return store.events_after(session, job_id, after)

    return Stream(channel=job_id, read_after=read_after, key="seq", is_terminal=is_terminal_status)


async def follow_job(ctx: Context, job_id: str, *, after_seq: int = 0) -> AsyncIterator[Event]:
    """Yield each of a job's events once, in sequence order, ending after its terminal status event."""
    async for event in follow(ctx.bus, job_stream(ctx, job_id), after=after_seq):
        yield event
