"""Organization hooks: register webhooks and commands, test them, read the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cloudarb.api.deps import Admin, CtxDep, PageDep, SessionDep, Viewer, job_ws_url
from cloudarb.db.models_hooks import HookDelivery
from cloudarb.errors import NotFound
from cloudarb.hooks import store
from cloudarb.hooks.dispatch import send_test
from cloudarb.hooks.events import EVENTS
from cloudarb.hooks.schemas import DeliveryOut, HookCreate, HookCreated, HookOut, HookPatch
from cloudarb.schemas import Page
from cloudarb.storage import audit

router = APIRouter(prefix="/hooks", tags=["hooks"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


class TestAccepted(BaseModel):
    delivery_id: str
    job_id: str
    websocket_url: str
    status_url: str


class EventsOut(BaseModel):
    events: list[str]


@router.get("/events", operation_id="list_hook_events", response_model=EventsOut)
def list_events(principal: Viewer) -> EventsOut:
    """The events a hook can subscribe to (also '<group>.*' and '*')."""
    return EventsOut(events=list(EVENTS))


@router.get("", operation_id="list_hooks", response_model=list[HookOut])
def list_hooks(session: SessionDep, principal: Viewer) -> list[HookOut]:
    return [HookOut.model_validate(h) for h in store.list_hooks(session, organization_id=principal.organization_id)]


@router.post("", operation_id="create_hook", status_code=201, response_model=HookCreated)
def create_hook(body: HookCreate, ctx: CtxDep, session: SessionDep, principal: Admin) -> JSONResponse:
    """Register a webhook (its signing secret is in this answer only) or a command (if the server allows)."""
    hook = store.create(session, ctx.settings, organization_id=principal.organization_id, body=body,
                        actor=principal.actor)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action="hook.create",
                 resource_type="hook", resource_id=hook.id, detail={"kind": hook.kind, "events": hook.events})
    out = HookCreated.model_validate({**HookOut.model_validate(hook).model_dump(), "secret": hook.secret})
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Location": f"/hooks/{hook.id}"})


@router.get("/deliveries", operation_id="list_hook_deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    session: SessionDep,
    principal: Viewer,
    page: PageDep,
    hook_id: Annotated[str | None, Query(max_length=64)] = None,
    subject_id: Annotated[str | None, Query(max_length=64, description="A deployment's or policy's id.")] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[DeliveryOut]:
    rows, total = store.deliveries(session, organization_id=principal.organization_id, hook_id=hook_id,
                                   subject_id=subject_id, status=status, limit=page.limit, offset=page.offset)
    return Page[DeliveryOut](items=[DeliveryOut.model_validate(r) for r in rows], total=total, limit=page.limit,
                             offset=page.offset)


@router.get("/deliveries/{delivery_id}", operation_id="get_hook_delivery", response_model=DeliveryOut)
def get_delivery(delivery_id: IdPath, session: SessionDep, principal: Viewer) -> DeliveryOut:
    row = session.get(HookDelivery, delivery_id)
    if row is None or row.organization_id != principal.organization_id:
        raise NotFound(f"hook delivery {delivery_id} not found")
    return DeliveryOut.model_validate(row)


@router.get("/{hook_id}", operation_id="get_hook", response_model=HookOut)
def get_hook(hook_id: IdPath, session: SessionDep, principal: Viewer) -> HookOut:
    hook = store.get(session, organization_id=principal.organization_id, hook_id=hook_id)
    if hook is None:
        raise NotFound(f"hook {hook_id} not found")
    return HookOut.model_validate(hook)


@router.patch("/{hook_id}", operation_id="update_hook", response_model=HookOut)
def update_hook(hook_id: IdPath, body: HookPatch, session: SessionDep, principal: Admin) -> HookOut:
    """Rename, resubscribe, pause (``enabled: false``) or resume a hook; its URL or command is fixed."""
    hook = store.get(session, organization_id=principal.organization_id, hook_id=hook_id)
    if hook is None:
        raise NotFound(f"hook {hook_id} not found")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(hook, name, value)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action="hook.update",
                 resource_type="hook", resource_id=hook_id, detail={"fields": sorted(changes)})
    session.flush()
    return HookOut.model_validate(hook)


@router.delete("/{hook_id}", operation_id="delete_hook", status_code=204)
def delete_hook(hook_id: IdPath, session: SessionDep, principal: Admin) -> Response:
    hook = store.get(session, organization_id=principal.organization_id, hook_id=hook_id)
    if hook is None:
        raise NotFound(f"hook {hook_id} not found")
    store.delete(session, hook)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action="hook.delete",
                 resource_type="hook", resource_id=hook_id)
    return Response(status_code=204)


@router.post("/{hook_id}/test", operation_id="test_hook", status_code=202, response_model=TestAccepted)
def test_hook(hook_id: IdPath, request: Request, ctx: CtxDep, principal: Admin) -> TestAccepted:
    """Queue a ``hook.test`` delivery to this hook; follow its job, then read the delivery."""
    with ctx.db.session() as session:
        hook = store.get(session, organization_id=principal.organization_id, hook_id=hook_id)
    if hook is None:
        raise NotFound(f"hook {hook_id} not found")
    result = send_test(ctx, organization_id=principal.organization_id, hook=hook, actor=principal.actor)
    delivery_id, job_id = result.deliveries[0], result.jobs[0]
    return TestAccepted(delivery_id=delivery_id, job_id=job_id, websocket_url=job_ws_url(request, ctx, job_id),
                        status_url=f"/hooks/deliveries/{delivery_id}")
