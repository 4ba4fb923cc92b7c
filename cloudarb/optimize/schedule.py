"""Due policy runs: each due slot is claimed with a conditional update, so a policy runs once per slot
however many schedulers look at it (one per worker in production)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cloudarb.optimize import policy_store
from cloudarb.optimize.submit import run_policy_now

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)


def start_due_policies(ctx: Context) -> int:
    """Start every due policy once; returns the runs started."""
    started = 0
    now = policy_store.now()
    with ctx.db.session() as session:
        due = list(policy_store.due(session, now=now))
    for policy in due:
        with ctx.db.session() as session:
            if not policy_store.claim_slot(session, policy=policy, now=now):
                continue
        try:
            run_policy_now(ctx, policy, actor="scheduler")
            started += 1
        except Exception:
            log.exception("could not start policy run", extra={"policy_id": policy.id})
    return started
