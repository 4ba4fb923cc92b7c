"""The deploy and teardown sequences a deploy job runs (re-runnable: a job resumed after a crash
continues from the rows, never creates a second instance for a key).

Deploy: write every replica's intent row (one transaction) before any provider call; launch each;
on no capacity, quota or a gone offer, block the offer, re-solve the line (``failover``) and try the
next offer as a new attempt; wait for the instances to run; set the deployment's status; reconcile the
providers it touched. Each step is published (``env.emit``) and each attempt kept as a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cloudarb.db.models_deploy import DeployAttempt, DeployInstance, Deployment
from cloudarb.deploy import keys
from cloudarb.deploy import states as st
from cloudarb.deploy.create import Outcome, launch, wait_ready
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.failover import Choice, block, next_offer
from cloudarb.deploy.providers.base import Provisioner
from cloudarb.deploy.schemas import Plan, PlannedLine


@dataclass(frozen=True)
class LineResult:
    line: int
    replica: int
    instance_id: str | None
    state: str
    reason: str = ""


def get_deployment(env: DeployEnv, deployment_id: str) -> Deployment:
    with env.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None:
            raise LookupError(f"deployment {deployment_id} does not exist")
        return dep


def set_status(env: DeployEnv, deployment_id: str, status: str, *, when: tuple[str, ...] | None = None,
               reason: str | None = None) -> bool:
    now = env.clock()
    with env.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None or (when is not None and dep.status not in when):
            return False
        dep.status, dep.updated_at = status, now
        if reason is not None:
            dep.end_reason = reason
        if status == "ended":
            dep.ended_at = now
    env.emit("deployment", {"deployment_id": deployment_id, "status": status, "reason": reason})
    return True


def _new_row(env: DeployEnv, dep: Deployment, line: PlannedLine, replica: int, attempt: int,
             choice: Choice | None, prov: Provisioner) -> DeployInstance:
    caps = prov.capabilities
    key = keys.make_key(env.install_id(), dep.id, line.index, replica, attempt, max_length=caps.max_key_length)
    c = choice
    return DeployInstance(
        organization_id=dep.organization_id, deployment_id=dep.id, line_index=line.index, replica=replica,
        attempt=attempt, key=key, workload_id=line.workload_id, provider=c.provider if c else line.provider,
        account=Plan.model_validate(dep.spec).account, offer_key=c.offer_key if c else line.offer_key,
        region=c.region if c else line.region, zone=c.zone if c else line.zone,
        instance_type=c.instance_type if c else line.instance_type, gpu_model=c.gpu_model if c else line.gpu_model,
        gpu_count=c.gpus_per_instance if c else line.gpus_per_instance, spot=c.spot if c else line.spot,
        price_per_hour=c.price_per_hour if c else line.price_per_hour,
        billing_granularity_s=caps.billing_granularity_s, billing_minimum_s=caps.billing_minimum_s,
        billing_minimum_per_run=caps.minimum_per_run,
        can_stop=caps.stop_start and (caps.stop_spot or not (c.spot if c else line.spot)),
        state=st.REQUESTED, expires_at=dep.expires_at, created_at=env.clock(), state_at=env.clock())


def write_intents(env: DeployEnv, dep: Deployment, plan: Plan) -> None:
    """One intent row per replica that has none yet, all committed together before any create (a run
    of the same job that wrote them first wins: the keys are unique)."""
    try:
        with env.db.session() as session:
            have = set(session.execute(select(DeployInstance.line_index, DeployInstance.replica).where(
                DeployInstance.deployment_id == dep.id)).all())
            for line in plan.lines:
                for replica in range(line.instances):
                    if (line.index, replica) not in have:
                        prov = env.provisioner(line.provider, plan.account)
                        session.add(_new_row(env, dep, line, replica, 0, None, prov))
    except IntegrityError:
        pass  # written by the other run of this job; the rows are there
    env.emit("intents", {"deployment_id": dep.id, "replicas": sum(ln.instances for ln in plan.lines)})


def _current(env: DeployEnv, deployment_id: str, line: int, replica: int) -> DeployInstance | None:
    with env.db.session() as session:
        return session.scalars(select(DeployInstance).where(
            DeployInstance.deployment_id == deployment_id, DeployInstance.line_index == line,
            DeployInstance.replica == replica, DeployInstance.key.not_like("orphan:%"),
        ).order_by(DeployInstance.attempt.desc())).first()


def _record(env: DeployEnv, row: DeployInstance, outcome: str, reason: str) -> None:
    with env.db.session() as session:
        session.add(DeployAttempt(deployment_id=row.deployment_id, line_index=row.line_index, replica=row.replica,
                                  attempt=row.attempt, provider=row.provider, offer_key=row.offer_key,
                                  outcome=outcome, reason=reason, created_at=env.clock()))
    env.emit("attempt", {"line": row.line_index, "replica": row.replica, "attempt": row.attempt,
                         "provider": row.provider, "offer_key": row.offer_key, "outcome": outcome, "reason": reason})


def _ending(env: DeployEnv, deployment_id: str) -> bool:
    return get_deployment(env, deployment_id).status in ("ending", "ended")


def deploy_replica(env: DeployEnv, dep: Deployment, line: PlannedLine, replica: int) -> LineResult:
    """Launch one replica, failing over to the next offer on capacity, quota or a gone offer."""
    row = _current(env, dep.id, line.index, replica)
    assert row is not None
    tried = {row.offer_key}
    while True:
        if row.state not in st.UNRESOLVED:
            return LineResult(line.index, replica, row.id, row.state, row.end_reason or "")
        if _ending(env, dep.id):
            return LineResult(line.index, replica, row.id, row.state, "deployment ending")
        outcome: Outcome = launch(env, row.id)
        reason = f"{outcome.error.code}: {outcome.error}" if outcome.error else ""
        _record(env, row, outcome.state if outcome.error is None else outcome.error.code, reason)
        if not outcome.failover or row.attempt + 1 >= env.settings.deploy_failover_attempts:
            return LineResult(line.index, replica, row.id, outcome.state, reason)
        block(env, row.offer_key, reason)
        choice = next_offer(env, dep, line, tried)
        if choice is None:
            _record(env, row, "no_alternative", "no other offer fits this line")
            return LineResult(line.index, replica, row.id, outcome.state, reason + "; no other offer fits")
        tried.add(choice.offer_key)
        env.emit("failover", {"line": line.index, "replica": replica, "from": row.offer_key, "to": choice.offer_key})
        with env.db.session() as session:
            attempts = session.scalar(select(func.max(DeployInstance.attempt)).where(
                DeployInstance.deployment_id == dep.id, DeployInstance.line_index == line.index,
                DeployInstance.replica == replica)) or 0
            new = _new_row(env, dep, line, replica, attempts + 1, choice,
                           env.provisioner(choice.provider, Plan.model_validate(dep.spec).account))
            session.add(new)
        row = new


def deploy(env: DeployEnv, deployment_id: str) -> list[LineResult]:
    dep = get_deployment(env, deployment_id)
    if dep.status in ("ending", "ended"):
        return []
    plan = Plan.model_validate(dep.spec)
    if dep.status == "pending":
        refused = env.notify(dep.organization_id, "deploy.before", _hook_payload(dep, plan), True)
        if refused:
            set_status(env, dep.id, "failed", when=("pending",), reason=f"a deploy.before hook refused: {refused[0]}")
            return []
    set_status(env, dep.id, "deploying", when=("pending", "deploying", "partial", "failed"))
    write_intents(env, dep, plan)
    results = [deploy_replica(env, dep, line, r) for line in plan.lines for r in range(line.instances)]
    final = []
    for res in results:
        state = res.state
        if res.instance_id and state in (st.CREATED, st.BOOTING, st.REACHABLE):
            state = wait_ready(env, res.instance_id, timeout_s=env.settings.deploy_boot_timeout_s,
                               poll_s=env.settings.deploy_boot_poll_s)
        final.append(LineResult(res.line, res.replica, res.instance_id, state, res.reason))
    if _ending(env, dep.id):
        teardown(env, dep.id, reason=dep.end_reason or "ended during deploy")
        return final
    running = sum(1 for r in final if r.state == st.RUNNING)
    status = "running" if running == len(final) else "partial" if running else "failed"
    set_status(env, dep.id, status, when=("deploying",))
    env.notify(dep.organization_id, "deploy.after", {**_hook_payload(dep, plan), "status": status,
                                                     "instances": _instances(env, dep.id)}, False)
    return final


def _hook_payload(dep: Deployment, plan: Plan) -> dict[str, object]:
    return {"deployment_id": dep.id, "name": dep.name, "optimization_id": dep.optimization_id,
            "expires_at": dep.expires_at.isoformat(),
            "rate_per_hour": round(sum(ln.price_per_hour * ln.instances for ln in plan.lines), 6),
            "lines": [ln.model_dump(mode="json", exclude={"launch"}) for ln in plan.lines]}


def _instances(env: DeployEnv, deployment_id: str) -> list[dict[str, object]]:
    return [{"id": r.id, "provider": r.provider, "state": r.state, "provider_id": r.provider_id,
             "address": r.address, "ssh_port": r.ssh_port} for r in live_rows(env, deployment_id)]


def live_rows(env: DeployEnv, deployment_id: str) -> list[DeployInstance]:
    with env.db.session() as session:
        return list(session.scalars(select(DeployInstance).where(
            DeployInstance.deployment_id == deployment_id, DeployInstance.state.in_(st.LIVE))))


def teardown(env: DeployEnv, deployment_id: str, *, reason: str, passes: int = 3) -> list[str]:
    """Destroy every live instance of the deployment with proof; the deployment ends when none is left
    (what is left is retried by the scheduler; leaked ones alert)."""
    dep = get_deployment(env, deployment_id)
    step = "done" if reason.startswith("done") else "destroy"
    payload = {"deployment_id": dep.id, "name": dep.name, "reason": reason}
    rows = live_rows(env, deployment_id)
    if rows and not any(r.state in st.DESTROYING for r in rows):  # the first pass (a retry does not ask again)
        env.notify(dep.organization_id, f"{step}.before", payload, True)  # informs; never blocks a teardown
    set_status(env, deployment_id, "ending", when=("pending", "deploying", "running", "partial", "failed", "ending"),
               reason=reason)
    left: list[str] = []
    for _ in range(passes):
        rows = live_rows(env, deployment_id)
        left = [r.id for r in rows if destroy(env, r.id, reason=reason) not in st.ENDED]
        if not left:
            break
    if not left and not live_rows(env, deployment_id):
        if set_status(env, deployment_id, "ended", when=("ending",)):
            env.notify(dep.organization_id, f"{step}.after", payload, False)
    return left


def expired_deployments(env: DeployEnv, now: datetime) -> list[str]:
    with env.db.session() as session:
        return list(session.scalars(select(Deployment.id).where(
            Deployment.expires_at <= now, Deployment.status.not_in(("ended",)))))
