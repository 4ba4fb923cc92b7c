"""Running things in this process against the configured database (the embedded default)."""

from __future__ import annotations

import time
from typing import Any

from cloudarb.context import Context
from cloudarb.jobs import store as job_store
from cloudarb.jobs.submit import submit_optimization
from cloudarb.schemas import AllocationOut, OptimizeRequest
from cloudarb.storage import accounts
from cloudarb.storage import optimizations as opt_store
from cloudarb.views import to_out

LOCAL_ORG = "local"


def local_org(ctx: Context) -> str:
    with ctx.db.session() as session:
        return accounts.get_or_create_org(session, name=LOCAL_ORG).id


def run_optimization(ctx: Context, request: OptimizeRequest, on_event: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit to the in-process queue, relay events until the terminal one, return the stored result."""
    org = local_org(ctx)
    done = submit_optimization(ctx, organization_id=org, request=request, actor="cli")
    seen = 0
    while True:
        with ctx.db.session() as session:
            events = job_store.events_after(session, done.job.id, seen)
        for event in events:
            seen = event["seq"]
            on_event(event)
        if any(e.get("type") == "status" and e.get("terminal") for e in events):
            break
        time.sleep(0.1)
    with ctx.db.session() as session:
        opt = opt_store.get(session, organization_id=org, optimization_id=done.optimization.id)
        if opt is None:
            raise RuntimeError("the optimization disappeared from the database")
        out = to_out(session, opt).model_dump(mode="json")
        lines = [
            AllocationOut.model_validate(a, from_attributes=True).model_dump(mode="json")
            for a in opt_store.allocations(session, optimization_id=opt.id)
        ]
    return out, lines
