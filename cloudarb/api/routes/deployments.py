"""Deployments: deploy an optimization or one offer (202 + job + WebSocket), list, read, extend,
stop, start, done, destroy, and the deployment's live steps. Never imports a provider: deploy jobs do the calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudarb.api.deps import (
    CtxDep,
    Editor,
    IdempotencyDep,
    PageDep,
    Principal,
    SessionDep,
    Viewer,
    accept_authenticated,
    job_ws_url,
)
from cloudarb.context import Context
from cloudarb.db.models_deploy import Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy import extend as extension
from cloudarb.deploy import stopstart
from cloudarb.deploy.stopstart import StopStartAccepted, StopStartRequest
from cloudarb.deploy.submit import Accepted, DeployOrder, submit_deployment, submit_teardown
from cloudarb.deploy.views import (
    DeployAccepted,
    DeploymentOut,
    DeploymentPage,
    DeployRequest,
    ExtendRequest,
    OfferDeployRequest,
    to_out,
)
from cloudarb.errors import NotFound
from cloudarb.jobs.follow import follow_job

router = APIRouter(tags=["deployments"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


def _accepted(request: Request, ctx: Context, done: Accepted) -> JSONResponse:
    body = DeployAccepted(id=done.deployment_id, job_id=done.job_id, status=done.status,
                          websocket_url=job_ws_url(request, ctx, done.job_id).replace(
                              f"/ws/jobs/{done.job_id}", f"/ws/deployments/{done.deployment_id}"),
                          status_url=f"/deployments/{done.deployment_id}", private_key=done.private_key)
    headers = {"Location": f"/deployments/{done.deployment_id}", "Cache-Control": "no-store"}
    if done.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)


@router.post("/optimize/{optimization_id}/deploy", operation_id="deploy_optimization", status_code=202,
             response_model=DeployAccepted)
def deploy_optimization(optimization_id: IdPath, body: DeployRequest, request: Request, ctx: CtxDep,
                        principal: Editor, idempotency: IdempotencyDep) -> JSONResponse:
    """Rent what the optimization chose (all lines or ``lines``), each instance's intent recorded before
    any provider is asked. Refused (409 ``budget_exceeded``, with the figures) when its spend until expiry
    does not fit the organization's remaining monthly budget."""
    hours = body.lifetime_hours or ctx.settings.deploy_default_lifetime_h
    order = DeployOrder(lifetime_s=hours * 3600, override_max_lifetime=body.override_max_lifetime, name=body.name,
                        ssh_public_key=body.ssh_public_key, launch=body.launch, per_line=body.per_line or None)
    done = submit_deployment(ctx, organization_id=principal.organization_id, actor=principal.actor, order=order,
                             optimization_id=optimization_id, lines=body.lines,
                             idempotency=idempotency.scoped(f"deploy:{optimization_id}") if idempotency else None)
    return _accepted(request, ctx, done)


@router.post("/offers/{offer_key:path}/deploy", operation_id="deploy_offer", status_code=202,
             response_model=DeployAccepted)
def deploy_offer(offer_key: str, body: OfferDeployRequest, request: Request, ctx: CtxDep, principal: Editor,
                 idempotency: IdempotencyDep) -> JSONResponse:
    """Rent one offer directly for a bounded time (1-12 h; longer with ``override_max_lifetime``)."""
    order = DeployOrder(lifetime_s=body.lifetime_hours * 3600, override_max_lifetime=body.override_max_lifetime,
                        name=body.name, ssh_public_key=body.ssh_public_key, launch=body.launch)
    done = submit_deployment(ctx, organization_id=principal.organization_id, actor=principal.actor, order=order,
                             offer_key=offer_key, instances=body.instances,
                             idempotency=idempotency.scoped(f"deploy-offer:{offer_key}") if idempotency else None)
    return _accepted(request, ctx, done)


@router.get("/deployments", operation_id="list_deployments", response_model=DeploymentPage)
def list_deployments(principal: Viewer, session: SessionDep, page: PageDep,
                     status: Annotated[str | None, Query(max_length=20)] = None) -> DeploymentPage:
    base = select(Deployment).where(Deployment.organization_id == principal.organization_id)
    if status:
        base = base.where(Deployment.status == status)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(Deployment.created_at.desc()).limit(page.limit).offset(page.offset))
    now = utcnow()
    return DeploymentPage(items=[to_out(session, d, now) for d in rows], total=total, limit=page.limit,
                          offset=page.offset)


def owned(session: Session, principal: Principal, deployment_id: str) -> Deployment:
    dep = session.get(Deployment, deployment_id)
    if dep is None or dep.organization_id != principal.organization_id:
        raise NotFound(f"deployment {deployment_id} not found")
    return dep


@router.get("/deployments/{deployment_id}", operation_id="get_deployment", response_model=DeploymentOut)
def get_deployment(deployment_id: IdPath, principal: Viewer, session: SessionDep) -> DeploymentOut:
    """Lines, instances (state, address, SSH command, cost so far) and every attempt with its reason."""
    return to_out(session, owned(session, principal, deployment_id), utcnow())


@router.post("/deployments/{deployment_id}/extend", operation_id="extend_deployment", response_model=DeploymentOut)
def extend_deployment(deployment_id: IdPath, body: ExtendRequest, principal: Editor, ctx: CtxDep,
                      session: SessionDep) -> DeploymentOut:
    """Move the expiry by ``hours``; refused (409) past the deployment's maximum lifetime. A Kubernetes
    deployment's objects get the new ``cloudarb.io/expires-at`` from a job (its steps on the
    deployment's stream; a failure is an alert and leaves the extension in place)."""
    dep = owned(session, principal, deployment_id)
    extension.extend(ctx, organization_id=dep.organization_id, deployment_id=dep.id, by_s=body.hours * 3600,
                     actor=principal.actor)
    session.refresh(dep)
    return to_out(session, dep, utcnow())


def _stop_start(ctx: Context, session: Session, principal: Principal, deployment_id: str, action: str,
                body: StopStartRequest | None) -> StopStartAccepted:
    dep = owned(session, principal, deployment_id)
    job_id, ids = stopstart.submit(ctx, dep, action=action, actor=principal.actor,
                                   instances=body.instances if body else None, lines=body.lines if body else None)
    return StopStartAccepted(id=dep.id, job_id=job_id, action=action, status="queued", instances=ids,
                             websocket_url=f"/ws/deployments/{dep.id}")


@router.post("/deployments/{deployment_id}/stop", operation_id="stop_deployment", status_code=202,
             response_model=StopStartAccepted)
def stop_deployment(deployment_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep,
                    body: StopStartRequest | None = None) -> StopStartAccepted:
    """Stop every instance (or ``instances`` / ``lines``), keeping its disk or workspace; verified by the
    provider's reported state, and billed for no compute while stopped where the provider bills none.
    Refused (409, naming why) before any job where the provider cannot stop (Lambda; spot instances)."""
    return _stop_start(ctx, session, principal, deployment_id, "stop", body)


@router.post("/deployments/{deployment_id}/start", operation_id="start_deployment", status_code=202,
             response_model=StopStartAccepted)
def start_deployment(deployment_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep,
                     body: StopStartRequest | None = None) -> StopStartAccepted:
    """Start stopped instances again (all, or ``instances`` / ``lines``); a local placement with no free
    GPU waits in its node's queue. Verified by the provider's reported state."""
    return _stop_start(ctx, session, principal, deployment_id, "start", body)


def _teardown(ctx: Context, session: Session, principal: Principal, deployment_id: str, reason: str) -> JSONResponse:
    dep = owned(session, principal, deployment_id)
    job_id = submit_teardown(ctx, dep, actor=principal.actor, reason=reason)
    return JSONResponse({"id": dep.id, "job_id": job_id, "status": "ending",
                         "websocket_url": f"/ws/deployments/{dep.id}"}, status_code=202)


@router.post("/deployments/{deployment_id}/done", operation_id="finish_deployment", status_code=202)
def finish_deployment(deployment_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep) -> JSONResponse:
    """The work is finished: destroy every instance, each with the provider's proof."""
    return _teardown(ctx, session, principal, deployment_id, f"done ({principal.actor})")


@router.delete("/deployments/{deployment_id}", operation_id="destroy_deployment", status_code=202)
def destroy_deployment(deployment_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep) -> JSONResponse:
    """Destroy now (the same verified teardown as done)."""
    return _teardown(ctx, session, principal, deployment_id, f"destroyed by {principal.actor}")


def _current_job(ctx: Context, deployment_id: str) -> tuple[str | None, str | None]:
    with ctx.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        return (dep.organization_id, dep.job_id) if dep is not None else (None, None)


@router.websocket("/ws/deployments/{deployment_id}")
async def deployment_stream(
    websocket: WebSocket,
    deployment_id: str,
    token: Annotated[str | None, Query(max_length=4000)] = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> None:
    """Every step of the deployment's current job (deploy or teardown): replayed after ``after``, then
    live, closing after the last. Credentials and close codes as ``/ws/jobs/{id}``."""
    ctx: Context = websocket.app.state.ctx
    principal = await accept_authenticated(websocket, token)
    if principal is None:
        return
    org, job_id = await run_in_threadpool(_current_job, ctx, deployment_id)
    if org is None or org != principal.organization_id or job_id is None:
        await websocket.close(code=4404, reason=f"deployment {deployment_id[:64]} not found")
        return
    try:
        async for event in follow_job(ctx, job_id, after_seq=after):
            await websocket.send_json(event)
        await websocket.close(code=1000)
    except WebSocketDisconnect:
        return
