"""Stop and start: keep an instance (its disk, its workspace) without paying for its compute.

This module is the command (intent and refusals, API models; it imports no provider code, so the API
process may use it); ``stopstart_job`` is the job and the reconciler's part.

Intent first: the command commits ``desired_state`` (``stopped`` | ``running``) on every chosen row, a
stop also moving it to ``stopping``, before any provider is asked; the job (kind ``deploy``, streamed on
``/ws/deployments/{id}`` like a deploy) then asks the provider and verifies the outcome with a fresh
read of the provider's own state. Only that read moves a row: ``stopped`` when the provider reports it
stopped, ``running`` when it runs again; ``desired_state`` clears when the provider agrees. A worker
that dies between the commit and the call leaves the intent behind: the job's retry, or else the
reconciler (``stopstart_job.resume``), issues the call again. Repeats are idempotent: a row already as
asked costs no provider call.

Refusals come before any job, from what the row recorded at launch (``can_stop``: the provider's
``stop_start``, and for spot rows its ``stop_spot``), so the API never loads a provider module:
Lambda and Kubernetes objects cannot stop, and CloudArb's spot instances come from one-time requests
(EC2 stops only persistent spot requests).

Money: where the provider bills no compute while stopped (``Capabilities.stopped_billed`` False),
``stopstart_job.observe`` opens a pause when it sees the instance stopped and closes it when it sees it
run again (``cloudarb.deploy.metering``); the job and every reconcile pass call it, so a stop the agent or the
provider made by itself (a local container stopped past its expiry, a Vast instance stopped at zero
balance) is paused too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudarb.db.models import JobRun
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy import states as st
from cloudarb.errors import Conflict, InvalidInput
from cloudarb.jobs.enqueue import submission
from cloudarb.storage import audit

if TYPE_CHECKING:
    from cloudarb.context import Context

FUNCTION = "cloudarb.deploy.jobs.stop_start_body"
KIND = "deploy"
STOPPED, RUNNING = "stopped", "running"
DESIRED = {"stop": STOPPED, "start": RUNNING}
STOPPABLE = (st.RUNNING, st.REACHABLE, st.STOPPING, st.STOPPED)
"""Row states a stop or start may be asked in (a booting instance is the deploy job's until it runs)."""


def why_not(row: DeployInstance) -> str | None:
    """Why this row cannot be stopped or started at all (None if it can)."""
    if row.can_stop:
        return None
    if row.spot:
        return (f"{row.provider} spot instance {row.provider_id or row.id} cannot be stopped: CloudArb rents spot "
                f"capacity as one-time requests, which the provider can only terminate (EC2 stops only instances "
                f"of persistent spot requests); destroy it instead")
    return f"{row.provider} instances cannot be stopped and started, only destroyed (instance {row.provider_id or row.id})"


def choose(session: Session, dep: Deployment, *, instances: Sequence[str] | None,
           lines: Sequence[int] | None) -> list[DeployInstance]:
    """The live rows a command names: all, or those whose id or provider id is in ``instances`` or whose
    line is in ``lines``. Unknown ids and lines are refused (422) by name."""
    rows = list(session.scalars(select(DeployInstance).where(
        DeployInstance.deployment_id == dep.id, DeployInstance.state.in_(st.LIVE))
        .order_by(DeployInstance.line_index, DeployInstance.replica, DeployInstance.attempt)))
    if instances:
        known = {r.id for r in rows} | {r.provider_id for r in rows if r.provider_id}
        missing = [i for i in instances if i not in known]
        if missing:
            raise InvalidInput(f"no live instance {', '.join(missing)} in deployment {dep.id}", field="instances")
        rows = [r for r in rows if r.id in instances or r.provider_id in instances]
    if lines:
        present = {r.line_index for r in rows}
        missing_lines = [str(n) for n in lines if n not in present]
        if missing_lines:
            raise InvalidInput(f"deployment {dep.id} has no live instance on line {', '.join(missing_lines)}",
                               field="lines")
        rows = [r for r in rows if r.line_index in lines]
    return rows


def record(session: Session, dep: Deployment, *, action: str, instances: Sequence[str] | None = None,
           lines: Sequence[int] | None = None, now: datetime) -> list[str]:
    """Check the command and write its intent on every chosen row (``desired_state``; a stop also moves
    the row to ``stopping``); returns the instance ids. Refused (409, naming why) before anything is
    written when the deployment is ending, another of its jobs is deploying or tearing down, or any
    chosen row cannot be stopped or started."""
    desired = DESIRED[action]
    if dep.status in ("ending", "ended"):
        raise Conflict(f"deployment {dep.id} is {dep.status}; nothing to {action}")
    if dep.target not in (None, "", "cloud"):
        raise Conflict(f"deployment {dep.id} is a {dep.target} deployment; its instances are not stopped or "
                       f"started by CloudArb")
    busy = session.get(JobRun, dep.job_id) if dep.job_id else None
    if busy is not None and busy.status in ("queued", "running") and busy.function != FUNCTION:
        raise Conflict(f"deployment {dep.id} has a job in progress ({busy.id}); {action} it when that job ends")
    rows = choose(session, dep, instances=instances, lines=lines)
    if not rows:
        raise Conflict(f"deployment {dep.id} has no live instance to {action}")
    refused = [reason for r in rows if (reason := why_not(r)) is not None]
    refused += [f"instance {r.provider_id or r.id} is {r.state}; only a running or stopped instance can be "
                f"{'stopped' if action == 'stop' else 'started'}"
                for r in rows if r.can_stop and r.state not in STOPPABLE]
    if refused:
        raise Conflict("; ".join(dict.fromkeys(refused)))
    ids = [r.id for r in rows]
    session.execute(update(DeployInstance).where(DeployInstance.id.in_(ids))
                    .values(desired_state=desired).execution_options(synchronize_session=False))
    if action == "stop":
        for r in rows:
            st.move(session, r.id, to=st.STOPPING, when=(st.RUNNING, st.REACHABLE), now=now)
    return ids


def submit(ctx: Context, deployment: Deployment, *, action: str, actor: str, instances: Sequence[str] | None = None,
           lines: Sequence[int] | None = None) -> tuple[str, list[str]]:
    """Record the intent and queue the job that carries it out, in one transaction; returns (job id,
    instance ids)."""
    with submission(ctx) as sub:
        dep = sub.session.get(Deployment, deployment.id, with_for_update=True)
        assert dep is not None
        now = utcnow()
        ids = record(sub.session, dep, action=action, instances=instances, lines=lines, now=now)
        job = sub.job(organization_id=dep.organization_id, kind=KIND, function=FUNCTION, target_id=dep.id,
                      message=f"{action}: {len(ids)} instance(s)", max_attempts=ctx.settings.job_max_attempts)
        dep.job_id, dep.updated_at = job.id, now
        audit.record(sub.session, organization_id=dep.organization_id, actor=actor, action=f"deployment.{action}",
                     resource_type="deployment", resource_id=dep.id, detail={"instances": ids})
    return job.id, ids


class StopStartRequest(BaseModel):
    """Which instances to stop or start: all of the deployment's when both lists are absent."""

    model_config = ConfigDict(extra="forbid")
    instances: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=1000, description="Instance ids (or the provider's instance ids).")
    lines: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, max_length=1000, description="Allocation line indexes.")


class StopStartAccepted(BaseModel):
    id: str = Field(description="The deployment id.")
    job_id: str
    action: str = Field(description="stop or start.")
    status: str
    instances: list[str] = Field(description="The instance ids the job stops or starts.")
    websocket_url: str
