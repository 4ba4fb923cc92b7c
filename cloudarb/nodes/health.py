"""Missed heartbeats: the scheduler's pass that marks silent nodes unhealthy.

A node silent for ``node_missed_heartbeats`` x ``node_heartbeat_interval_s`` is ``unhealthy``: its
offers leave the market at once and its live placements are flagged (they may still run; the
deploy stage's reconciler decides). Its next heartbeat makes it healthy again and clears the flags.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudarb.config import NodesSettings
from cloudarb.db.models_nodes import LIVE_PLACEMENT_STATES, Node, Placement
from cloudarb.db.types import utcnow
from cloudarb.nodes.agents import MISSED_HEARTBEATS
from cloudarb.nodes.market import remove_offers

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)


def mark_silent(session: Session, settings: NodesSettings) -> list[str]:
    """Mark every healthy node whose last heartbeat is too old unhealthy; returns their names."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.node_heartbeat_interval_s * settings.node_missed_heartbeats)
    silent = session.scalars(select(Node).where(Node.status == "healthy", Node.last_heartbeat_at < cutoff)
                             .with_for_update(skip_locked=True)).all()
    for node in silent:
        node.status, node.unhealthy_since = "unhealthy", now
        remove_offers(session, node.name)
        session.execute(update(Placement).where(Placement.node_id == node.id,
                                                Placement.state.in_(LIVE_PLACEMENT_STATES))
                        .values(flagged=MISSED_HEARTBEATS).execution_options(synchronize_session=False))
        log.warning("node marked unhealthy", extra={"node": node.name, "last_heartbeat_at": str(node.last_heartbeat_at)})
    return [n.name for n in silent]


def tick(ctx: Context) -> list[str]:
    """The scheduler's pass (every tick; one indexed read when no node is silent)."""
    with ctx.db.session() as session:
        return mark_silent(session, ctx.settings.section(NodesSettings))
