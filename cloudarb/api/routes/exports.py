"""Exports of a stored solution (Terraform, Kubernetes, SkyPilot, dstack, CSV), Kubernetes applies and
Terraform applies (both recorded as deployments).

The export renders in the request (pure functions over stored rows, milliseconds); the apply only
enqueues a job: the Kubernetes client and the cluster's credentials live in the workers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from cloudarb.api.deps import CtxDep, Editor, SessionDep, Viewer, job_ws_url
from cloudarb.db.models_deploy import Deployment
from cloudarb.db.models_hooks import KubernetesApply
from cloudarb.db.types import utcnow
from cloudarb.deploy.export import ExportOut, export, parse_lines, to_out, to_zip
from cloudarb.deploy.k8s_submit import KubernetesApplyRequest, submit_apply
from cloudarb.deploy.renderers import FORMATS, KubernetesOptions
from cloudarb.deploy.terraform_submit import TerraformApplyRequest, submit_terraform
from cloudarb.errors import NotFound

router = APIRouter(tags=["exports"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


class ApplyAccepted(BaseModel):
    id: str = Field(description="The apply's id, also its deployment's id.")
    deployment_id: str
    job_id: str
    status: str
    websocket_url: str = Field(description="The deployment's step stream (/ws/deployments/{id}).")
    status_url: str
    deployment_url: str


class ApplyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    optimization_id: str
    lines: list[int] | None
    options: dict[str, object]
    status: str
    job_id: str | None
    applied: list[dict[str, object]]
    error: str | None
    deployment_id: str | None = Field(default=None, description="The deployment recording the apply's objects.")


@router.get(
    "/optimize/{optimization_id}/export",
    operation_id="export_optimization",
    response_model=ExportOut,
    responses={200: {"content": {"application/zip": {}}, "description": "JSON listing, or a zip with archive=zip"}},
)
def export_optimization(
    optimization_id: IdPath,
    session: SessionDep,
    principal: Viewer,
    format: Annotated[str, Query(max_length=20, description=f"One of: {', '.join(FORMATS)}.")],
    lines: Annotated[str | None, Query(max_length=20_000, description="Line numbers, e.g. '0,2'; default all.")] = None,
    archive: Annotated[Literal["json", "zip"], Query(description="'zip': the files as one archive.")] = "json",
    lifetime_hours: Annotated[float | None, Query(gt=0, le=24 * 365, description=(
        "Tag the rendered machines with cloudarb:expires-at = now + this many hours."))] = None,
    namespace: Annotated[str, Query(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)] = "default",
    kueue_cluster_queue: Annotated[str | None, Query(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=63,
                                                     description="Add a Kueue LocalQueue and ResourceFlavors.")] = None,
    provider_label: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9./_-]{1,253}$", description=(
        "Kubernetes: the node label naming the provider, for a cluster spanning providers."))] = None,
    instance_type_selector: Annotated[bool, Query(description=(
        "Kubernetes: also pin node.kubernetes.io/instance-type to the chosen instance type."))] = False,
) -> Response:
    """Render the optimization's allocation (all lines or ``lines``) in one format.

    Lines a format cannot express (a provider without a Terraform provider, SkyPilot cloud or dstack
    backend) are listed in ``skipped`` (and inside the Terraform files), never dropped."""
    expires = utcnow() + timedelta(hours=lifetime_hours) if lifetime_hours else None
    rendered = export(session, organization_id=principal.organization_id, optimization_id=optimization_id,
                      fmt=format, lines=parse_lines(lines), expires_at=expires,
                      kubernetes_options=KubernetesOptions(namespace=namespace, kueue_cluster_queue=kueue_cluster_queue,
                                                           provider_label=provider_label,
                                                           instance_type_selector=instance_type_selector))
    if archive == "zip":
        skipped = ",".join(str(s.line) for s in rendered.skipped)
        return Response(to_zip(rendered), media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="cloudarb-{optimization_id}-{format}.zip"',
            "X-CloudArb-Skipped-Lines": skipped})
    return JSONResponse(to_out(optimization_id, rendered).model_dump(mode="json"))


@router.post("/optimize/{optimization_id}/kubernetes-apply", operation_id="apply_kubernetes", status_code=202,
             response_model=ApplyAccepted)
def apply_kubernetes(
    optimization_id: IdPath, body: KubernetesApplyRequest, request: Request, ctx: CtxDep, principal: Editor
) -> JSONResponse:
    """Server-side apply the Kubernetes export to the configured cluster (a worker job; 409 without one),
    recorded as a deployment of target ``kubernetes``: one instance per object, its steps on
    ``/ws/deployments/{id}``, deleted with proof by ``done``, ``DELETE /deployments/{id}`` or expiry."""
    done = submit_apply(ctx, organization_id=principal.organization_id, optimization_id=optimization_id, body=body,
                        actor=principal.actor)
    out = ApplyAccepted(id=done.apply_id, deployment_id=done.deployment_id, job_id=done.job_id, status=done.status,
                        websocket_url=job_ws_url(request, ctx, done.job_id).replace(
                            f"/ws/jobs/{done.job_id}", f"/ws/deployments/{done.deployment_id}"),
                        status_url=f"/kubernetes-applies/{done.apply_id}",
                        deployment_url=f"/deployments/{done.deployment_id}")
    return JSONResponse(out.model_dump(), status_code=202, headers={"Location": out.status_url})


class TerraformAccepted(BaseModel):
    id: str = Field(description="The deployment's id.")
    job_id: str
    status: str
    websocket_url: str = Field(description="The deployment's step stream (/ws/deployments/{id}).")
    status_url: str
    skipped_lines: list[int] = Field(description="Lines without an official Terraform provider (not applied).")


@router.post("/optimize/{optimization_id}/terraform-apply", operation_id="apply_terraform", status_code=202,
             response_model=TerraformAccepted)
def apply_terraform(
    optimization_id: IdPath, body: TerraformApplyRequest, request: Request, ctx: CtxDep, principal: Editor
) -> JSONResponse:
    """Apply the Terraform export through the organization's command hook: a deployment of target
    ``terraform`` whose working directory holds the rendered files; the hook's exit code and output are
    recorded on it, ``terraform output -json`` read for addresses; ``done``, ``DELETE`` and expiry run
    the ``terraform.destroy`` hook. 409 when command hooks are off or no hook names
    ``terraform.apply`` and ``terraform.destroy``."""
    done = submit_terraform(ctx, organization_id=principal.organization_id, optimization_id=optimization_id,
                            body=body, actor=principal.actor)
    out = TerraformAccepted(id=done.deployment_id, job_id=done.job_id, status=done.status,
                            websocket_url=job_ws_url(request, ctx, done.job_id).replace(
                                f"/ws/jobs/{done.job_id}", f"/ws/deployments/{done.deployment_id}"),
                            status_url=f"/deployments/{done.deployment_id}", skipped_lines=list(done.skipped_lines))
    return JSONResponse(out.model_dump(), status_code=202, headers={"Location": out.status_url})


@router.get("/kubernetes-applies/{apply_id}", operation_id="get_kubernetes_apply", response_model=ApplyOut)
def get_kubernetes_apply(apply_id: IdPath, session: SessionDep, principal: Viewer) -> ApplyOut:
    row = session.get(KubernetesApply, apply_id)
    if row is None or row.organization_id != principal.organization_id:
        raise NotFound(f"kubernetes apply {apply_id} not found")
    out = ApplyOut.model_validate(row)
    if session.get(Deployment, apply_id) is not None:
        out.deployment_id = apply_id
    return out
