"""The application context: settings, database, event bus and job queue, built once per process.

Only these adapters differ between the embedded mode and production; everything else is shared.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cloudarb.config import Settings, get_settings
from cloudarb.db.engine import Database
from cloudarb.events.bus import EventBus, LocalBus, RedisBus
from cloudarb.jobs.queue import InProcessQueue, JobQueue, RQQueue


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: EventBus
    queue: JobQueue = field(init=False)

    def close(self) -> None:
        self.queue.close()
        self.bus.close()
        self.db.dispose()


def build_context(settings: Settings, *, prepare: bool = True) -> Context:
    """Build adapters for ``settings``; in embedded mode also migrate and seed the SQLite file."""
    db = Database(settings.database_url)
    bus: EventBus = RedisBus(settings.redis_url) if settings.redis_url else LocalBus()
    ctx = Context(settings=settings, db=db, bus=bus)
    if settings.redis_url:
        ctx.queue = RQQueue(settings.redis_url, settings.queue_name, job_timeout_s=settings.job_timeout_s)
    else:
        ctx.queue = InProcessQueue(ctx, settings.embedded_workers)
    if prepare and settings.embedded:
        from cloudarb.bootstrap import prepare_embedded

        prepare_embedded(ctx)
    return ctx


_lock = threading.Lock()
_current: Context | None = None


def get_context() -> Context:
    """The process-wide context (used by RQ workers, which call jobs with ids only)."""
    global _current
    with _lock:
        if _current is None:
            _current = build_context(get_settings())
        return _current


def set_context(ctx: Context | None) -> None:
    global _current
    with _lock:
        _current = ctx
