"""Requesting a Terraform deployment: the deployment row (target ``terraform``) and its job in one
transaction. Shared by ``POST /optimize/{id}/terraform-apply`` and ``cloudarb deploy --via terraform``.

Refused up front (409) when it could not work or could not be undone: command hooks are off, no
enabled command hook of the organization names ``terraform.apply`` *and* one names
``terraform.destroy`` (a stack CloudArb could not destroy at its expiry is never started), or no line
of the selection has an official Terraform provider. Budget admission applies (the stack rents real
machines at the lines' prices), but nothing is metered: the resources are the Terraform
configuration's, billed to the team's cloud account, and CloudArb holds no handle on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from cloudarb.deploy.export import export
from cloudarb.deploy.k8s_submit import target_deployment
from cloudarb.errors import Conflict
from cloudarb.hooks.commands import missing
from cloudarb.jobs.enqueue import submission

if TYPE_CHECKING:
    from cloudarb.context import Context

KIND = "deploy"
APPLY_FUNCTION = "cloudarb.deploy.terraform_apply.apply_job"
TEARDOWN_FUNCTION = "cloudarb.deploy.terraform_apply.teardown_job"
EVENTS = ("terraform.apply", "terraform.destroy")
NOT_METERED = ("not metered by CloudArb: the Terraform configuration's resources are billed to the team's "
               "cloud account; the lines' prices are kept for reference and budget admission")

Scalar = str | int | float | bool


class TerraformApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, max_length=1000,
                                                            description="Line numbers; default all.")
    lifetime_hours: float | None = Field(default=None, gt=0, le=24 * 365, description=(
        "Hours until the destroy hook runs (default CLOUDARB_DEPLOY_DEFAULT_LIFETIME_H; 12 h at most without "
        "override_max_lifetime)."))
    override_max_lifetime: bool = False
    name: str = Field(default="", max_length=200)
    variables: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")],
                    Scalar | dict[str, Scalar]] = Field(
        default_factory=dict, max_length=50, description=(
            "Values of the rendered variables (key names, images per region; never secrets: they are written "
            "to cloudarb.auto.tfvars.json in the working directory). Credentials come from the hook's "
            "environment."))


@dataclass(frozen=True)
class TerraformSubmitted:
    deployment_id: str
    job_id: str
    status: str
    skipped_lines: tuple[int, ...]


def submit_terraform(ctx: Context, *, organization_id: str, optimization_id: str, body: TerraformApplyRequest,
                     actor: str) -> TerraformSubmitted:
    with submission(ctx) as sub:
        rendered = export(sub.session, organization_id=organization_id, optimization_id=optimization_id,
                          fmt="terraform", lines=body.lines)  # ownership and the lines first
        if not ctx.settings.hooks_commands:
            raise Conflict("command hooks are off (CLOUDARB_HOOKS_COMMANDS): a Terraform deployment is applied "
                           "by the organization's command hook")
        lacking = missing(sub.session, organization_id=organization_id, events=EVENTS)
        if lacking:
            raise Conflict(f"no enabled command hook names {' or '.join(lacking)}: register one (cloudarb hooks "
                           "add --command ... --events terraform.*) so the stack can be applied and destroyed")
        skipped = tuple(s.line for s in rendered.skipped)
        if not any(f.path not in ("cloudarb.tf.json", "variables.tf.json") for f in rendered.files):
            raise Conflict("no line of the selection has an official Terraform provider (AWS, GCP, Azure): "
                           "deploy it with cloudarb deploy instead")
        dep = target_deployment(
            ctx, sub.session, organization_id=organization_id, optimization_id=optimization_id, lines=body.lines,
            target="terraform", lifetime_hours=body.lifetime_hours, override=body.override_max_lifetime,
            name=body.name, actor=actor, admit=True,
            details={"metering": NOT_METERED, "variables": body.variables, "skipped_lines": list(skipped),
                     "runs": []})
        job = sub.job(organization_id=organization_id, kind=KIND, function=APPLY_FUNCTION, target_id=dep.id,
                      message="waiting for a worker", max_attempts=1)
        dep.job_id = job.id
        done = TerraformSubmitted(dep.id, job.id, job.status, skipped)
    return done
