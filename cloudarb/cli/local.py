"""Running things in this process against the configured database (the embedded default)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloudarb.db.models import Organization
from cloudarb.jobs.follow import follow_job
from cloudarb.optimize import store as opt_store
from cloudarb.optimize.submit import submit_optimization
from cloudarb.optimize.views import to_out
from cloudarb.schemas import AllocationOut, OptimizeRequest

if TYPE_CHECKING:
    from cloudarb.context import Context

LOCAL_ORG = "local"


def local_org(ctx: Context) -> str:
    """The local organization's id; created (through the accounts store) on the first command only,
    so later commands do not import the credential machinery (JWT, cryptography: ~0.1 s)."""
    with ctx.db.session() as session:
        found = session.scalars(select(Organization.id).where(Organization.name == LOCAL_ORG)).first()
        if found is not None:
            return found
        from cloudarb.storage import accounts

        return accounts.get_or_create_org(session, name=LOCAL_ORG).id


def relay(ctx: Context, job_id: str, on_event: Callable[[dict[str, Any]], None]) -> None:
    """Relay a job's events (replayed, then live from the in-process bus) until its terminal one."""

    async def run() -> None:
        async for event in follow_job(ctx, job_id):
            on_event(event)

    asyncio.run(run())


def run_optimization(
    ctx: Context, request: OptimizeRequest, on_event: Callable[[dict[str, Any]], None]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit to the in-process queue, relay events until the terminal one, return the stored result."""
    org = local_org(ctx)
    done = submit_optimization(ctx, organization_id=org, request=request, actor="cli")
    relay(ctx, done.job_id, on_event)
    with ctx.db.session() as session:
        opt = opt_store.get(session, organization_id=org, optimization_id=done.optimization_id)
        if opt is None:
            raise RuntimeError("the optimization disappeared from the database")
        out = to_out(session, opt).model_dump(mode="json")
        lines = [
            AllocationOut.model_validate(a, from_attributes=True).model_dump(mode="json")
            for a in opt_store.allocations(session, optimization_id=opt.id)
        ]
    return out, lines
