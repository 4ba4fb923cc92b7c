"""Following a stream of stored events: subscribe, replay from the store, relay live events, stop.

One loop serves every stream: a job's events (``cloudarb.jobs.follow.follow_job``: the WebSocket
route and the CLI) and the price changes (``cloudarb.ingest.events.follow``). Events are persisted before
they are broadcast, and carry increasing integer ids (a job event's ``seq``, a price event's ``id``).

The live subscription opens before the store is read, so an event published in between arrives
live. Whatever the live channel drops (a restart of Redis, a slow consumer) is picked up by
re-reading the store whenever the channel is quiet or skips an id. Ids are taken at insert and not
at commit, so a later id can become visible first: a follower keeps every id it has not seen below
the highest delivered one as a hole, re-reads the store while holes are open, delivers a late event
when its transaction commits, and gives a hole up after ``gap_wait_s`` (a rolled-back insert
leaves one for ever).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudarb.events.bus import EventBus

Event = dict[str, Any]
MAX_HOLES = 10_000


class Cursor:
    """Which event ids a follower has delivered: every id <= ``floor`` is delivered or given up;
    above it, ``seen`` holds the delivered ids and ``holes`` the missing ones (with when each was
    first missed). Pure bookkeeping, no I/O."""

    def __init__(self, floor: int, *, key: str = "id", gap_wait_s: float = 10.0) -> None:
        self.floor = floor
        self.top = floor
        self.key = key
        self.gap_wait_s = gap_wait_s
        self.seen: set[int] = set()
        self.holes: dict[int, float] = {}

    def fresh(self, events: Sequence[Event]) -> list[Event]:
        """The not yet delivered events among ``events``, in id order."""
        k = self.key
        return sorted((e for e in events if e[k] > self.floor and e[k] not in self.seen), key=lambda e: e[k])

    def contiguous(self, events: Sequence[Event]) -> bool:
        """Whether delivering ``events`` (fresh, in id order) leaves no hole and fills none."""
        k = self.key
        return not self.holes and bool(events) and events[0][k] == self.top + 1 and all(
            b[k] == a[k] + 1 for a, b in zip(events, events[1:], strict=False))

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
        """Give up holes older than ``gap_wait_s``."""
        for missing in [i for i, since in self.holes.items() if now - since >= self.gap_wait_s]:
            del self.holes[missing]
        self._advance()

    def _advance(self) -> None:
        self.floor = min(self.holes) - 1 if self.holes else self.top
        self.seen = {i for i in self.seen if i > self.floor}


@dataclass(frozen=True, kw_only=True)
class Stream:
    """How to follow one stream: its channel, how to read the store, and its message shape."""

    channel: str
    read_after: Callable[[int], list[Event]]
    """Stored events with ids above the argument, in id order (a blocking call; run in a thread)."""
    key: str = "id"
    unpack: Callable[[Event], list[Event]] = lambda message: [message]
    """The events inside one live message (a price refresh sends one message with many events)."""
    is_terminal: Callable[[Event], bool] = lambda event: False
    poll_s: float = 1.0
    gap_poll_s: float = 0.2
    gap_wait_s: float = 10.0


async def follow(bus: EventBus, stream: Stream, *, after: int) -> AsyncIterator[Event]:
    """Yield every event of ``stream`` with an id above ``after`` once, then live ones, until a
    terminal event (or for ever: the caller stops iterating)."""
    async with bus.subscribe(stream.channel) as live:
        cursor = Cursor(after, key=stream.key, gap_wait_s=stream.gap_wait_s)
        read_store = True
        while True:
            if read_store or cursor.holes:
                for event in cursor.fresh(await asyncio.to_thread(stream.read_after, cursor.floor)):
                    cursor.mark(event[stream.key], time.monotonic())
                    yield event
                    if stream.is_terminal(event):
                        return
                read_store = False
            cursor.expire(time.monotonic())
            message = await live.get(timeout=stream.gap_poll_s if cursor.holes else stream.poll_s)
            if message is None:
                read_store = True
                continue
            batch = cursor.fresh(stream.unpack(message))
            if batch and not cursor.contiguous(batch):
                read_store = True  # something in between was missed (or is still committing)
                continue
            for event in batch:
                cursor.mark(event[stream.key], time.monotonic())
                yield event
                if stream.is_terminal(event):
                    return
