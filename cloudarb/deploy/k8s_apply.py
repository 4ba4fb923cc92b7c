"""Kubernetes deployments: server-side apply of an optimization's manifests through the official client,
recorded as a deployment of target ``kubernetes``.

Runs only in a worker job (the API enqueues it through ``k8s_submit``). The job follows the deploy
stage's rules: every object it will own gets an instance row (provider ``kubernetes``, one per Job,
Deployment or PodDisruptionBudget, ``replica`` numbering the objects of a line) committed before the
cluster is asked; the object carries the row's key as its name and as the ``cloudarb.io/key`` label
(so two deployments of one optimization never share an object, and the reconciler finds what a crash
left behind); each row moves requested -> creating -> created -> running as its object is applied,
and every step is published on the deployment's event stream (``/ws/deployments/{id}``). Teardown
(``done``, ``DELETE /deployments/{id}``, expiry) is the deploy core's verified destroy through
``cloudarb.deploy.providers.kubernetes``: a DELETE per object, then reads until the 404 that proves it
gone. Kueue objects (ResourceFlavors, the LocalQueue) are shared cluster configuration: applied first
so Jobs find their queue, reported on the deployment, never deleted with it.

Each object is sent as the documented server-side apply call: ``PATCH <object path>?fieldManager=
cloudarb&force=true`` with ``Content-Type: application/apply-patch+yaml`` (JSON is YAML), which
creates the object or updates the fields CloudArb manages. Applying again is idempotent, so a job
re-run after a crash or a transient failure re-applies what is unresolved and never makes a second
object. Around the apply the organization's hooks see ``deploy.before`` (blocking: a failing hook
stops the apply with its reason) and ``deploy.after`` (with every object's outcome).

Extending the deployment moves its expiry in the database and queues ``expiry_job``: a JSON merge
patch of each workload object's ``cloudarb.io/expires-at`` annotation (``cloudarb.deploy.extend``).

Money: the cluster is the team's; CloudArb does not meter it unless the apply asked to (``meter``),
in which case each workload object carries its line's price (all its machines) and is metered per
second like any instance.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.db.models_hooks import KubernetesApply
from cloudarb.deploy import keys
from cloudarb.deploy import states as st
from cloudarb.deploy.alerts import raise_alert
from cloudarb.deploy.create import adopt
from cloudarb.deploy.env import DeployEnv, env_for, provider_config
from cloudarb.deploy.errors import InvalidLaunch, ProviderUnavailable, ProvisionError
from cloudarb.deploy.export import load_plan
from cloudarb.deploy.providers.base import RemoteInstance, RemoteState
from cloudarb.deploy.providers.kubernetes import (
    EXPIRES_ANNOTATION,
    KEY_LABEL,
    OWNED_KINDS,
    PROVIDER,
    KubernetesProvisioner,
    load_client,
    provider_id,
    translate,
)
from cloudarb.deploy.renderers.kubernetes import KubernetesOptions, objects
from cloudarb.deploy.renderers.plan import Plan
from cloudarb.deploy.run import set_status
from cloudarb.jobs.errors import JobInputError, TransientJobError

if TYPE_CHECKING:
    from cloudarb.jobs.runtime import JobContext

log = logging.getLogger(__name__)

FIELD_MANAGER = "cloudarb"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
KUEUE_GROUP = "kueue.x-k8s.io"
PLURALS = {"LocalQueue": "localqueues", "ResourceFlavor": "resourceflavors"}
CLUSTER_SCOPED = frozenset({"ResourceFlavor"})
DEPLOYMENT_LABEL = "cloudarb.io/deployment"
ACCOUNT = "default"


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    namespace: str | None
    status: int
    uid: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace, "http_status": self.status,
                "uid": self.uid}


@dataclass(frozen=True)
class Owned:
    """One object a deployment owns: its line, its number among the line's objects, key and manifest."""

    line: int
    replica: int
    key: str
    doc: dict[str, Any]


def api_client(kubeconfig: Path, context: str | None = None) -> k8s.ApiClient:
    """A client whose every request is a server-side apply (the generated methods would otherwise send
    a strategic-merge patch; the client's default headers take precedence over the method's)."""
    return load_client(kubeconfig, context, default_headers={"Content-Type": APPLY_CONTENT_TYPE})


def _call(api: k8s.ApiClient, obj: dict[str, Any]) -> Callable[[], Any]:
    kind = obj["kind"]
    name = obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    # force as the API's own spelling ("true"; the client would send Python's "True")
    common: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": "true", "_preload_content": False}
    if kind == "Job":
        return lambda: k8s.BatchV1Api(api).patch_namespaced_job(name, namespace, obj, **common)
    if kind == "Deployment":
        return lambda: k8s.AppsV1Api(api).patch_namespaced_deployment(name, namespace, obj, **common)
    if kind == "PodDisruptionBudget":
        return lambda: k8s.PolicyV1Api(api).patch_namespaced_pod_disruption_budget(name, namespace, obj, **common)
    if kind in PLURALS:
        version = obj["apiVersion"].split("/", 1)[1]
        custom = k8s.CustomObjectsApi(api)
        if kind in CLUSTER_SCOPED:
            return lambda: custom.patch_cluster_custom_object(KUEUE_GROUP, version, PLURALS[kind], name, obj, **common)
        return lambda: custom.patch_namespaced_custom_object(KUEUE_GROUP, version, namespace, PLURALS[kind], name,
                                                             obj, **common)
    raise InvalidLaunch(f"no apply path for kind {kind}", provider=PROVIDER)


def apply_object(api: k8s.ApiClient, obj: dict[str, Any]) -> Applied:
    kind, name = obj["kind"], obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    try:
        response = _call(api, obj)()
    except ApiException as exc:
        raise translate(exc, f"{kind} {name}") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ProviderUnavailable(f"{kind} {name}: the API server did not answer: {exc}", provider=PROVIDER) from exc
    try:
        uid = json.loads(response.data or b"{}").get("metadata", {}).get("uid")
    except ValueError:
        uid = None
    return Applied(kind, name, namespace, int(response.status), uid)


def ordered(files: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Kueue objects first (flavors, then the queue), then each workload's objects as rendered."""
    docs = list(files.get("kueue.yaml", []))
    docs.sort(key=lambda d: 0 if d["kind"] == "ResourceFlavor" else 1)
    for path, items in files.items():
        if path != "kueue.yaml":
            docs.extend(items)
    return docs


def _rekey(value: Any, old: str, new: str) -> Any:
    """Every string equal to ``old`` (the export's mark: names, labels, selectors, env) becomes ``new``."""
    if isinstance(value, dict):
        return {k: _rekey(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekey(v, old, new) for v in value]
    return new if value == old else value


def owned_objects(plan: Plan, options: KubernetesOptions, *, install: str,
                  deployment_id: str) -> tuple[list[dict[str, Any]], list[Owned]]:
    """(shared Kueue objects, objects the deployment owns) of one apply.

    A line's objects take the deployment's keys instead of the export's mark: the line's first object
    (its Job or Deployment) is named after replica 0's key, which its pods' labels and the selectors
    carry; each further object (a PodDisruptionBudget) gets its own key as name and label."""
    docs = ordered(objects(plan, options))
    shared = [d for d in docs if d["kind"] not in OWNED_KINDS]
    owned: list[Owned] = []
    for line in plan.lines:
        mark = plan.key(line)
        mine = [d for d in docs if d["kind"] in OWNED_KINDS and d["metadata"].get("labels", {}).get(KEY_LABEL) == mark]
        first = keys.make_key(install, deployment_id, line.index, 0, 0, max_length=63)
        for replica, doc in enumerate(mine):
            key = keys.make_key(install, deployment_id, line.index, replica, 0, max_length=63)
            new = _rekey(copy.deepcopy(doc), mark, first)
            meta = new["metadata"]
            meta["name"] = key
            meta["labels"] = {**meta.get("labels", {}), KEY_LABEL: key, DEPLOYMENT_LABEL: deployment_id}
            owned.append(Owned(line.index, replica, key, new))
    return shared, owned


def options_of(stored: dict[str, Any]) -> KubernetesOptions:
    return KubernetesOptions(namespace=stored.get("namespace", "default"),
                             image=stored.get("image", KubernetesOptions.image),
                             command=tuple(stored["command"]) if stored.get("command") else None,
                             region_selector=bool(stored.get("region_selector", True)),
                             provider_label=stored.get("provider_label"),
                             instance_type_selector=bool(stored.get("instance_type_selector", False)),
                             kueue_cluster_queue=stored.get("kueue_cluster_queue"))


def _env(jc: JobContext) -> DeployEnv:
    def emit(step: str, payload: dict[str, Any]) -> None:
        message = payload.get("reason") or payload.get("status") or payload.get("key") or ""
        jc.progress(step, message=str(message), **{k: v for k, v in payload.items() if k != "reason"},
                    reason=payload.get("reason"))

    return env_for(jc.ctx).with_emit(emit)


def write_rows(env: DeployEnv, dep: Deployment, plan: Plan, owned: list[Owned], *, meter: bool) -> None:
    """The intent rows of every owned object not yet recorded, committed together before any apply."""
    lines = {ln.index: ln for ln in plan.lines}
    now = env.clock()
    try:
        with env.db.session() as session:
            have = set(session.scalars(select(DeployInstance.key).where(DeployInstance.deployment_id == dep.id)))
            for o in owned:
                if o.key in have:
                    continue
                line = lines[o.line]
                workload = o.doc["kind"] in ("Job", "Deployment")
                session.add(DeployInstance(
                    organization_id=dep.organization_id, deployment_id=dep.id, line_index=o.line, replica=o.replica,
                    attempt=0, key=o.key, workload_id=line.workload_id, provider=PROVIDER, account=ACCOUNT,
                    offer_key=line.offer_key, region=line.region, instance_type=line.instance_type,
                    gpu_model=line.gpu_model, gpu_count=line.gpus if workload else 0, spot=False,
                    price_per_hour=line.hourly_cost if meter and workload else 0.0,
                    billing_granularity_s=1, billing_minimum_s=0, state=st.REQUESTED, expires_at=dep.expires_at,
                    created_at=now, state_at=now))
    except IntegrityError:
        pass  # written by the other run of this job; the rows are there
    env.emit("intents", {"deployment_id": dep.id, "replicas": len(owned)})


def _rows(env: DeployEnv, deployment_id: str) -> dict[str, DeployInstance]:
    with env.db.session() as session:
        return {r.key: r for r in session.scalars(select(DeployInstance).where(
            DeployInstance.deployment_id == deployment_id))}


def _applied_one(env: DeployEnv, row: DeployInstance, done: Applied) -> None:
    now = env.clock()
    remote = RemoteInstance(provider_id=provider_id(done.kind, done.namespace, done.name), key=row.key,
                            state=RemoteState.RUNNING, raw_state=f"HTTP {done.status}", created_at=now)
    fresh = _rows(env, row.deployment_id or "")[row.key]
    if fresh.state in st.UNRESOLVED:
        adopt(env, fresh, remote)
    with env.db.session() as session:
        st.move(session, row.id, to=st.RUNNING, when=(st.CREATED,), now=now, running_at=now,
                address=f"{done.namespace}/{done.name}")


def _ending(env: DeployEnv, deployment_id: str) -> bool:
    with env.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        return dep is None or dep.status in ("ending", "ended")


def _record(env: DeployEnv, deployment_id: str, **values: Any) -> None:
    with env.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        if dep is not None:
            dep.details = {**(dep.details or {}), **values}
        row = session.get(KubernetesApply, deployment_id)
        if row is not None:
            if "error" in values:
                row.error = values["error"]
            if "applied" in values:  # what an earlier run of the job applied stays listed
                new = {(a["kind"], a["name"]) for a in values["applied"]}
                row.applied = [a for a in row.applied or [] if (a["kind"], a["name"]) not in new] + values["applied"]


def apply_job(jc: JobContext) -> str:
    """Job body of ``k8s_apply`` (target: the deployment): rows first, hooks, apply, record, report."""
    settings = jc.ctx.settings
    if settings.deploy_kubeconfig is None:
        raise JobInputError("no cluster is configured (CLOUDARB_DEPLOY_KUBECONFIG)")
    env = _env(jc)
    with jc.ctx.db.session() as session:
        dep = session.get(Deployment, jc.target_id)
        request = session.get(KubernetesApply, jc.target_id)
        if dep is None or request is None:
            raise JobInputError(f"kubernetes deployment {jc.target_id} not found")
        plan = load_plan(session, organization_id=dep.organization_id, optimization_id=request.optimization_id,
                         lines=request.lines, expires_at=dep.expires_at)
        stored = dict(request.options)
    if dep.status in ("ending", "ended"):
        return "finished"
    opts = options_of(stored)
    shared, owned = owned_objects(plan, opts, install=env.install_id(), deployment_id=dep.id)
    org = dep.organization_id
    about = {"target": "kubernetes", "deployment_id": dep.id, "apply_id": dep.id,
             "optimization_id": plan.optimization_id, "namespace": opts.namespace,
             "objects": [f"{d['kind']}/{d['metadata']['name']}" for d in [*shared, *(o.doc for o in owned)]]}
    if dep.status == "pending":
        refused = env.notify(org, "deploy.before", about, True)
        if refused:
            reason = f"stopped by a deploy.before hook: {refused[0]}"
            set_status(env, dep.id, "failed", when=("pending",), reason=reason)
            _record(env, dep.id, error=reason, applied=[])
            raise JobInputError(reason)
    set_status(env, dep.id, "deploying", when=("pending", "deploying"))
    write_rows(env, dep, plan, owned, meter=bool(stored.get("meter")))
    applied: list[Applied] = []
    total = len(shared) + len(owned)
    api = api_client(settings.deploy_kubeconfig, settings.deploy_kube_context)
    try:
        for doc in shared:
            jc.check_canceled()
            done = apply_object(api, doc)
            applied.append(done)
            jc.progress("apply", percent=100.0 * len(applied) / max(1, total),
                        message=f"{done.kind}/{done.name}: HTTP {done.status} (shared)", object=done.as_dict())
        for o in owned:
            jc.check_canceled()
            if _ending(env, dep.id):  # torn down meanwhile: apply nothing more (the teardown ends the rows)
                break
            row = _rows(env, dep.id)[o.key]
            if row.state not in st.UNRESOLVED:
                continue  # applied by an earlier run of this job
            with env.db.session() as session:
                st.move(session, row.id, to=st.CREATING, when=st.UNRESOLVED, now=env.clock(), launched_at=env.clock())
            try:
                done = apply_object(api, o.doc)
            except ProviderUnavailable as exc:  # may have been applied: the next run applies it again
                with env.db.session() as session:
                    st.move(session, row.id, to=st.CREATE_UNKNOWN, when=(st.CREATING,), now=env.clock(),
                            last_error=exc.message)
                raise
            except ProvisionError as exc:
                with env.db.session() as session:
                    st.move(session, row.id, to=st.FAILED, when=(st.CREATING,), now=env.clock(),
                            ended_at=env.clock(), last_error=exc.message, end_reason=exc.message)
                raise
            applied.append(done)
            _applied_one(env, row, done)
            jc.progress("apply", percent=100.0 * len(applied) / max(1, total),
                        message=f"{done.kind}/{done.name}: HTTP {done.status}", object=done.as_dict(),
                        instance_id=row.id, line=o.line, replica=o.replica, provider=PROVIDER,
                        provider_id=provider_id(done.kind, done.namespace, done.name))
    except ProvisionError as exc:
        _finish(env, dep.id, org, about, applied, shared, error=exc.message, final=not isinstance(
            exc, ProviderUnavailable))
        if isinstance(exc, ProviderUnavailable):
            raise TransientJobError(exc.message) from exc
        raise JobInputError(exc.message) from exc
    finally:
        api.close()
    _finish(env, dep.id, org, about, applied, shared, error=None, final=True)
    return "finished"


def _finish(env: DeployEnv, deployment_id: str, org: str, about: dict[str, Any], applied: list[Applied],
            shared: list[dict[str, Any]], *, error: str | None, final: bool) -> None:
    """Record the outcome; once final, settle the deployment's status and tell the after hooks."""
    _record(env, deployment_id, applied=[a.as_dict() for a in applied], error=error,
            shared=[f"{d['kind']}/{d['metadata']['name']}" for d in shared])
    if not final:
        return
    if error is not None:  # what was never tried stays unapplied: end those rows now
        now = env.clock()
        with env.db.session() as session:
            for row in session.scalars(select(DeployInstance).where(DeployInstance.deployment_id == deployment_id,
                                                                    DeployInstance.state == st.REQUESTED)):
                st.move(session, row.id, to=st.FAILED, when=(st.REQUESTED,), now=now, ended_at=now,
                        end_reason=f"not applied: {error}")
    rows = list(_rows(env, deployment_id).values())
    running = sum(1 for r in rows if r.state == st.RUNNING)
    status = "running" if running == len(rows) and error is None else "partial" if running else "failed"
    set_status(env, deployment_id, status, when=("deploying",), reason=error)
    outcome = {**about, "status": status, "applied": [a.as_dict() for a in applied], "ok": error is None,
               "error": error}
    env.notify(org, "deploy.after", outcome, False)


EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""As the renderer writes the annotation (``Plan.tags``)."""
ANNOTATED_KINDS = ("Job", "Deployment")
"""The objects the renderer puts ``cloudarb.io/expires-at`` on (a PodDisruptionBudget carries none)."""


def expiry_job(jc: JobContext) -> str:
    """Job body of an extension (kind ``deploy``, target: the deployment): write the deployment's expiry,
    as stored when the job runs, on each live Job and Deployment object it owns.

    Each object is one step (``expiry``) on the deployment's stream. An object that is gone (404) is
    left to the reconciler; an API server that does not answer is retried as the job's next attempt;
    what still failed at the end (or was refused: 401/403/422) raises one ``expiry_sync`` alert naming
    the objects and the expiry they should carry, and the job fails with that reason. The extension in
    the database stands whatever happens here."""
    if jc.ctx.settings.deploy_kubeconfig is None:
        raise JobInputError("no cluster is configured (CLOUDARB_DEPLOY_KUBECONFIG)")
    with jc.ctx.db.session() as session:
        dep = session.get(Deployment, jc.target_id)
        if dep is None or dep.target != PROVIDER:
            raise JobInputError(f"kubernetes deployment {jc.target_id} not found")
        org, status, value = dep.organization_id, dep.status, dep.expires_at.strftime(EXPIRY_FORMAT)
        targets = [r.provider_id for r in session.scalars(select(DeployInstance).where(
            DeployInstance.deployment_id == dep.id, DeployInstance.state.in_(st.LIVE),
            DeployInstance.provider_id.is_not(None)).order_by(DeployInstance.line_index, DeployInstance.replica))
            if r.provider_id and r.provider_id.split("/", 1)[0] in ANNOTATED_KINDS]
    if status in ("ending", "ended"):
        jc.progress("done", percent=100, message=f"deployment {status}: no expiry to write")
        return "finished"
    prov = KubernetesProvisioner(provider_config(jc.ctx.settings, PROVIDER, ACCOUNT))
    failed: list[tuple[str, str]] = []
    transient = False
    try:
        for n, pid in enumerate(targets, start=1):
            jc.check_canceled()
            try:
                found = prov.annotate(pid, {EXPIRES_ANNOTATION: value})
            except ProvisionError as exc:
                failed.append((pid, exc.message))
                transient = transient or isinstance(exc, ProviderUnavailable)
            else:
                done = f"{EXPIRES_ANNOTATION}={value}" if found is not None else "gone (the reconciler ends its row)"
                jc.progress("expiry", percent=100.0 * n / len(targets), provider_id=pid, message=f"{pid}: {done}")
                continue
            jc.progress("expiry", percent=100.0 * n / len(targets), provider_id=pid, reason=failed[-1][1],
                        message=f"{pid}: not annotated: {failed[-1][1]}")
    finally:
        prov.close()
    if not failed:
        jc.progress("done", percent=100, message=f"{len(targets)} object(s) expire at {value}")
        return "finished"
    reason = f"{len(failed)} of {len(targets)} object(s) still announce an earlier expiry: {failed[0][1]}"
    if transient and jc.job.attempts < jc.job.max_attempts:
        raise TransientJobError(reason)
    with jc.ctx.db.session() as session:
        raise_alert(session, kind="expiry_sync", dedupe=f"expiry_sync:{jc.target_id}:{value}", organization_id=org,
                    message=f"kubernetes deployment {jc.target_id} was extended to {value}, but {reason}",
                    deployment_id=jc.target_id, expires_at=value, objects=[p for p, _ in failed],
                    errors=[e for _, e in failed])
    raise JobInputError(reason)
