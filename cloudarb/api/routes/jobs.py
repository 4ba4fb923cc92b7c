"""Jobs: list, read, replay events, cancel, and the live WebSocket stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloudarb.api.deps import CtxDep, Editor, PageDep, SessionDep, Viewer, accept_authenticated
from cloudarb.context import Context
from cloudarb.errors import NotFound
from cloudarb.jobs import store as job_store
from cloudarb.jobs.enqueue import cancel_job
from cloudarb.jobs.events import JobEvent
from cloudarb.jobs.follow import follow_job
from cloudarb.schemas import JobOut, JobStatus, Page

router = APIRouter(tags=["jobs"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/jobs", operation_id="list_jobs", response_model=Page[JobOut])
def list_jobs(
    principal: Viewer, session: SessionDep, page: PageDep, status: Annotated[JobStatus | None, Query()] = None
) -> Page[JobOut]:
    rows, total = job_store.list_jobs(
        session, organization_id=principal.organization_id, status=status, limit=page.limit, offset=page.offset
    )
    return Page[JobOut](
        items=[JobOut.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/jobs/{job_id}", operation_id="get_job", response_model=JobOut)
def get_job(job_id: IdPath, principal: Viewer, session: SessionDep) -> JobOut:
    job = job_store.get_job(session, job_id, organization_id=principal.organization_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return JobOut.model_validate(job, from_attributes=True)


@router.get("/jobs/{job_id}/events", operation_id="get_job_events", response_model=list[JobEvent],
            response_model_exclude_unset=True)
def get_job_events(
    job_id: IdPath, principal: Viewer, session: SessionDep, after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0
) -> list[dict[str, Any]]:
    """The job's stored events after ``after`` (the WebSocket sends the same objects)."""
    if job_store.get_job(session, job_id, organization_id=principal.organization_id) is None:
        raise NotFound(f"job {job_id} not found")
    return job_store.events_after(session, job_id, after)


@router.delete("/jobs/{job_id}", operation_id="cancel_job", response_model=JobOut)
def delete_job(job_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep) -> JobOut:
    job = job_store.get_job(session, job_id, organization_id=principal.organization_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status in job_store.ACTIVE:
        cancel_job(ctx, job, actor=principal.actor)
    session.expire_all()
    refreshed = job_store.get_job(session, job_id, organization_id=principal.organization_id)
    return JobOut.model_validate(refreshed, from_attributes=True)


def _job_org(ctx: Context, job_id: str) -> str | None:
    with ctx.db.session() as session:
        job = job_store.get_job(session, job_id)
        return job.organization_id if job is not None else None


@router.websocket("/ws/jobs/{job_id}")
async def job_stream(
    websocket: WebSocket,
    job_id: str,
    token: Annotated[str | None, Query(max_length=4000)] = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> None:
    """Replays the job's stored events after ``after``, then streams live ones; closes after the last.

    Credentials: a bearer header or X-API-Key (programs, the CLI), or the subprotocol pair
    ``cloudarb.bearer, <token>`` (browsers cannot set headers on a WebSocket; the server answers with
    ``cloudarb.bearer``). ``?token=`` still works for old clients; access logs show it redacted.
    Refusals are close codes after the handshake: 4401 bad credentials, 4404 unknown job (or another
    organization's).
    """
    ctx: Context = websocket.app.state.ctx
    principal = await accept_authenticated(websocket, token)
    if principal is None:
        return
    org = await run_in_threadpool(_job_org, ctx, job_id)
    if org is None or org != principal.organization_id:
        await websocket.close(code=4404, reason=f"job {job_id[:64]} not found")
        return
    try:
        async for event in follow_job(ctx, job_id, after_seq=after):
            await websocket.send_json(event)
        await websocket.close(code=1000)
    except WebSocketDisconnect:
        return
