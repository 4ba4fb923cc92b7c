"""An after-hook of a deployment (``deploy.after``, ``done.after``, ``destroy.after``) is delivered by
a job after the step, so its failure reaches no one who is waiting. The sweep raises one
``hook_failed`` alert per delivery the hooks stage marked ``failed`` (all attempts spent)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.db.models_hooks import HookDelivery
from cloudarb.deploy.alerts import raise_alert

AFTER_EVENTS = ("deploy.after", "done.after", "destroy.after")


def alert_failed_after_hooks(session: Session, now: datetime, *, within: timedelta = timedelta(days=1)) -> int:
    """Alert on failed after-hook deliveries updated within ``within``; returns the new alerts."""
    failed = session.scalars(select(HookDelivery).where(
        HookDelivery.status == "failed", HookDelivery.event.in_(AFTER_EVENTS),
        HookDelivery.updated_at >= now - within))
    raised = 0
    for d in failed:
        reason = d.error or (f"HTTP {d.status_code}" if d.status_code else f"exit {d.exit_code}"
                             if d.exit_code is not None else "no answer")
        if raise_alert(session, kind="hook_failed", dedupe=f"hook_failed:{d.id}", organization_id=d.organization_id,
                       message=f"the {d.event} hook of deployment {d.subject_id or '?'} failed after "
                               f"{d.attempts} attempts: {reason}",
                       delivery_id=d.id, hook_id=d.hook_id, event=d.event, deployment_id=d.subject_id):
            raised += 1
    return raised
