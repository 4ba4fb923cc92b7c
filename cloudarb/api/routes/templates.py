"""Container templates for the team's own GPU hosts: the catalog (read-only), an organization's own
templates (admins make, change and delete them) and the organization's policy (which templates its
placements may use, and whether custom images are allowed)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from cloudarb.api.deps import Admin, CtxDep, SessionDep, Viewer
from cloudarb.config import NodesSettings
from cloudarb.db.models_nodes import Template
from cloudarb.nodes import templates
from cloudarb.nodes.templates import TemplateCreate, TemplateFields, TemplateName, TemplatePatch
from cloudarb.storage import audit

router = APIRouter()
NamePath = Annotated[str, Path(min_length=1, max_length=80)]


class TemplateOut(BaseModel):
    name: str
    title: str
    description: str
    image: str
    ports: list[dict[str, Any]]
    command: list[str] | None
    env: dict[str, str]
    health_check: dict[str, Any]
    builtin: bool
    owner: str = Field(description="'catalog' (read-only: built in or the installation's) or 'organization' "
                       "(this organization's own).")
    allowed: bool = Field(description="Whether this organization's policy lets its placements use it.")
    created_by: str
    created_at: datetime
    updated_at: datetime


class TemplatePolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_templates: list[TemplateName] | None = Field(
        description="The only templates the organization's placements may use; null = every template it sees.",
        max_length=500)
    custom_images: bool | None = Field(
        default=None, description="Whether placements may name any image; null = the server's setting "
        "(an organization may narrow it, never widen it).")


class TemplatePolicyOut(BaseModel):
    allowed_templates: list[str] | None
    custom_images: bool | None
    custom_images_effective: bool = Field(description="What placements may do now (server and organization).")
    server_custom_images: bool = Field(description="CLOUDARB_NODE_CUSTOM_IMAGES on this server.")
    updated_by: str
    updated_at: datetime | None


def _server_custom(ctx: CtxDep) -> bool:
    return ctx.settings.section(NodesSettings).node_custom_images


def _out(session: SessionDep, row: Template, organization_id: str) -> TemplateOut:
    return TemplateOut.model_validate(templates.describe(row, organization_id, templates.policy(session, organization_id)))


def _audit(session: SessionDep, principal: Admin, action: str, name: str, detail: dict[str, Any] | None = None) -> None:
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action=action,
                 resource_type="node_template", resource_id=name, detail=detail)


@router.get("/templates", operation_id="list_templates", response_model=list[TemplateOut], tags=["templates"])
def list_templates(principal: Viewer, session: SessionDep, allowed_only: bool = False) -> list[TemplateOut]:
    """The catalog templates this organization sees and its own, each marked with whether its policy
    allows it (``allowed_only``: just those its placements may use)."""
    rows = templates.visible(session, organization_id=principal.organization_id)
    out = [_out(session, t, principal.organization_id) for t in rows]
    return [t for t in out if t.allowed] if allowed_only else out


@router.get("/templates/policy", operation_id="get_template_policy", response_model=TemplatePolicyOut, tags=["templates"])
def get_template_policy(principal: Viewer, ctx: CtxDep, session: SessionDep) -> TemplatePolicyOut:
    """Which templates this organization's placements may use, and whether custom images are allowed."""
    view = templates.view_policy(session, organization_id=principal.organization_id,
                                 server_custom_images=_server_custom(ctx))
    return TemplatePolicyOut.model_validate(view, from_attributes=True)


@router.put("/templates/policy", operation_id="set_template_policy", response_model=TemplatePolicyOut, tags=["templates"])
def set_template_policy(body: TemplatePolicyIn, principal: Admin, ctx: CtxDep, session: SessionDep) -> TemplatePolicyOut:
    """Replace the organization's template policy (admins). Every listed name must be a template the
    organization sees (422 names the entry); custom images can only be narrowed from the server's setting."""
    view = templates.set_policy(session, organization_id=principal.organization_id, actor=principal.actor,
                                allowed_templates=body.allowed_templates, custom_images=body.custom_images,
                                server_custom_images=_server_custom(ctx))
    _audit(session, principal, "node.template_policy", principal.organization_id, body.model_dump(mode="json"))
    return TemplatePolicyOut.model_validate(view, from_attributes=True)


@router.get("/templates/{name}", operation_id="get_template", response_model=TemplateOut, tags=["templates"])
def get_template(name: NamePath, principal: Viewer, session: SessionDep) -> TemplateOut:
    row = templates.get(session, organization_id=principal.organization_id, name=name)
    return _out(session, row, principal.organization_id)


@router.post("/templates", operation_id="create_template", response_model=TemplateOut, status_code=201,
             tags=["templates"])
def create_template(body: TemplateCreate, principal: Admin, ctx: CtxDep, session: SessionDep) -> TemplateOut:
    """An organization's own template (admins). Its name must not be one the organization already sees
    (409); it is usable at once unless the organization's allow-list leaves it out (see ``allowed``)."""
    row = templates.create(session, organization_id=principal.organization_id, actor=principal.actor, body=body,
                           server_custom_images=_server_custom(ctx))
    _audit(session, principal, "node.template_create", row.name, {"image": row.image})
    return _out(session, row, principal.organization_id)


@router.put("/templates/{name}", operation_id="replace_template", response_model=TemplateOut, tags=["templates"])
def replace_template(name: NamePath, body: TemplateFields, principal: Admin, ctx: CtxDep,
                     session: SessionDep) -> TemplateOut:
    """Replace all of one of the organization's own templates (catalog ones are read-only: 403).
    Containers made from it keep what they were made with."""
    row = templates.replace(session, organization_id=principal.organization_id, name=name, body=body,
                            server_custom_images=_server_custom(ctx))
    _audit(session, principal, "node.template_update", row.name, {"image": row.image})
    return _out(session, row, principal.organization_id)


@router.patch("/templates/{name}", operation_id="update_template", response_model=TemplateOut, tags=["templates"])
def update_template(name: NamePath, body: TemplatePatch, principal: Admin, ctx: CtxDep,
                    session: SessionDep) -> TemplateOut:
    """Change some fields of one of the organization's own templates; the result is checked as a whole."""
    row = templates.patch(session, organization_id=principal.organization_id, name=name, body=body,
                          server_custom_images=_server_custom(ctx))
    _audit(session, principal, "node.template_update", row.name, body.model_dump(mode="json", exclude_unset=True))
    return _out(session, row, principal.organization_id)


@router.delete("/templates/{name}", operation_id="delete_template", status_code=204, tags=["templates"])
def delete_template(name: NamePath, principal: Admin, session: SessionDep) -> Response:
    """Delete one of the organization's own templates (not while live placements were made from it: 409;
    catalog ones: 403). It leaves the organization's allow-list too."""
    templates.delete(session, organization_id=principal.organization_id, name=name)
    _audit(session, principal, "node.template_delete", name)
    return Response(status_code=204)

