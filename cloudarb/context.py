"""The application context: settings, database, event bus, job queue and job kinds, built per process.

Only the adapters differ between the embedded mode and production; everything else is shared. This
module is a composition root: it is where the features' job kinds are registered (an explicit
mapping, no registration by import), and nothing of the machinery or the features imports it at run
time (they name ``Context`` for type checking only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cloudarb.config import Settings
from cloudarb.db.engine import Database
from cloudarb.events.bus import EventBus, LocalBus, RedisBus
from cloudarb.jobs.kinds import JobKind, JobKinds
from cloudarb.jobs.queue import InProcessQueue, JobQueue, RQQueue

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloudarb.db.models import JobRun


def job_kinds() -> JobKinds:
    """Every kind of job and how its target follows its status."""
    from cloudarb.optimize.store import follow_job

    return JobKinds([
        JobKind("optimize", on_status=follow_job),
        JobKind("policy_run", on_status=follow_job),
        JobKind("ingest"),
        JobKind("forecast"),
        JobKind("deploy", on_status=_deployment_follows),
        JobKind("hook_delivery", on_status=_hook_delivery_follows),
        JobKind("k8s_apply", on_status=_k8s_apply_follows),
    ])


# Imported at their first call: every process builds the registry, and importing the deploy and
# hooks features up front (Kubernetes renderers, PyYAML) cost the embedded CLI ~0.2 s per command.
def _deployment_follows(session: Session, job: JobRun, status: str) -> None:
    from cloudarb.deploy.follow import follow_job

    follow_job(session, job, status)


def _hook_delivery_follows(session: Session, job: JobRun, status: str) -> None:
    from cloudarb.hooks.store import follow_job

    follow_job(session, job, status)


def _k8s_apply_follows(session: Session, job: JobRun, status: str) -> None:
    from cloudarb.deploy.k8s_submit import follow_job

    follow_job(session, job, status)


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: EventBus
    kinds: JobKinds = field(default_factory=job_kinds)
    queue: JobQueue = field(init=False)

    def close(self) -> None:
        self.queue.close()
        self.bus.close()
        self.db.dispose()


def build_context(settings: Settings, *, prepare: bool = True) -> Context:
    """Build adapters for ``settings``; in embedded mode also bring the SQLite file to the current
    schema and seed it (both skipped, in a millisecond, when already done)."""
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
