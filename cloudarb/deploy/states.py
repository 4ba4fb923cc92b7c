"""Instance states and their conditional transitions (like ``cloudarb.jobs.store``).

A transition is an ``UPDATE ... WHERE state IN (...)``, so a late writer (a deploy job resumed after a
crash, a reconciler pass, a lifetime check) can never move an instance backwards or out of an end
state. ``terminated`` is only ever written with the provider's proof of absence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import DeployInstance
from cloudarb.deploy.metering import close_books

REQUESTED = "requested"
CREATING = "creating"
CREATE_UNKNOWN = "create_unknown"
CREATED = "created"
BOOTING = "booting"
REACHABLE = "reachable"
RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"
TERMINATING = "terminating"
TERMINATED = "terminated"
FAILED = "failed"
LEAKED = "leaked"

STATES = (REQUESTED, CREATING, CREATE_UNKNOWN, CREATED, BOOTING, REACHABLE, RUNNING, STOPPING, STOPPED,
          TERMINATING, TERMINATED, FAILED, LEAKED)
ENDED = frozenset({TERMINATED, FAILED})
LIVE = tuple(s for s in STATES if s not in ENDED)
"""States of a row that may name something at a provider (the reconciler matches these)."""
UNRESOLVED = (REQUESTED, CREATING, CREATE_UNKNOWN)
"""No provider instance known yet."""
UP = (CREATED, BOOTING, REACHABLE, RUNNING, STOPPING, STOPPED)
"""A provider instance exists and nobody asked to destroy it."""
DESTROYING = (TERMINATING, LEAKED)


def move(session: Session, instance_id: str, *, to: str, when: tuple[str, ...], now: datetime,
         **values: Any) -> bool:
    """Set ``state`` (and ``values``) only if the row is in one of ``when``; True if it moved."""
    if to not in STATES:
        raise ValueError(f"unknown instance state {to!r}")
    result = session.execute(
        update(DeployInstance)
        .where(DeployInstance.id == instance_id, DeployInstance.state.in_(when))
        .values(state=to, state_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    moved = bool(getattr(result, "rowcount", 0))
    if moved and values.get("billing_stopped_at") is not None:
        close_books(session, instance_id, values["billing_stopped_at"])  # the ledger holds it at once
    return moved


def claim(session: Session, row: DeployInstance, *, to: str, now: datetime, **values: Any) -> bool:
    """Move ``row`` only if it is still exactly as read (same state, same ``state_at``): of two workers
    that read the same row (a job run twice), one wins."""
    result = session.execute(
        update(DeployInstance)
        .where(DeployInstance.id == row.id, DeployInstance.state == row.state, DeployInstance.state_at == row.state_at)
        .values(state=to, state_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
