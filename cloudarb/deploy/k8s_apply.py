"""Server-side apply of an optimization's Kubernetes manifests through the official Python client.

Runs only in a worker job (the API enqueues ``k8s_submit``). Each object is sent as the documented
server-side apply call: ``PATCH <object path>?fieldManager=cloudarb&force=true`` with
``Content-Type: application/apply-patch+yaml`` (JSON is YAML), which creates the object or updates the
fields CloudArb manages, taking them over from another manager (``force``) because the plan is the
source of truth for what it rendered. Kueue objects go first (ResourceFlavors, LocalQueue) so Jobs
find their queue. Around the apply the organization's hooks see ``deploy.before`` (blocking: a
failing hook stops the apply with its reason) and ``deploy.after`` (with every object's outcome).

The client's errors are translated here: 401/403 -> ``AuthFailed``, 404 (a kind the cluster does not
serve, e.g. Kueue not installed) and 400/422 -> ``InvalidLaunch``, 409/429/5xx and connection
failures -> ``ProviderUnavailable`` (the job runtime retries it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from cloudarb import hooks
from cloudarb.db.models_hooks import KubernetesApply
from cloudarb.deploy.errors import AuthFailed, InvalidLaunch, ProviderUnavailable, ProvisionError
from cloudarb.deploy.export import load_plan
from cloudarb.deploy.renderers.kubernetes import KubernetesOptions, objects
from cloudarb.jobs.errors import JobInputError, TransientJobError

if TYPE_CHECKING:
    from cloudarb.jobs.runtime import JobContext

log = logging.getLogger(__name__)

FIELD_MANAGER = "cloudarb"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
KUEUE_GROUP = "kueue.x-k8s.io"
PLURALS = {"LocalQueue": "localqueues", "ResourceFlavor": "resourceflavors"}
CLUSTER_SCOPED = frozenset({"ResourceFlavor"})


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


def api_client(kubeconfig: Path, context: str | None = None) -> k8s.ApiClient:
    """A client whose every request is a server-side apply (the generated methods would otherwise send
    a strategic-merge patch; the client's default headers take precedence over the method's)."""
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=configuration)
    api = k8s.ApiClient(configuration)
    api.set_default_header("Content-Type", APPLY_CONTENT_TYPE)
    return api


def _translate(exc: ApiException, what: str) -> ProvisionError:
    status = exc.status or 0
    detail = f"{what}: HTTP {status} {exc.reason or ''}".strip()
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    if message:
        detail += f": {message}"
    if status in (401, 403):
        return AuthFailed(detail, provider="kubernetes")
    if status in (400, 404, 422):
        return InvalidLaunch(detail, provider="kubernetes")
    return ProviderUnavailable(detail, provider="kubernetes")


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
    raise InvalidLaunch(f"no apply path for kind {kind}", provider="kubernetes")


def apply_object(api: k8s.ApiClient, obj: dict[str, Any]) -> Applied:
    kind, name = obj["kind"], obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    try:
        response = _call(api, obj)()
    except ApiException as exc:
        raise _translate(exc, f"{kind} {name}") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ProviderUnavailable(f"{kind} {name}: the API server did not answer: {exc}", provider="kubernetes") from exc
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


def apply_job(jc: JobContext) -> str:
    """Job body of ``k8s_apply``: render, ask the blocking hooks, apply every object, record, report."""
    settings = jc.ctx.settings
    if settings.deploy_kubeconfig is None:
        raise JobInputError("no cluster is configured (CLOUDARB_DEPLOY_KUBECONFIG)")
    with jc.ctx.db.session() as session:
        row = session.get(KubernetesApply, jc.target_id)
        if row is None:
            raise JobInputError(f"kubernetes apply {jc.target_id} not found")
        plan = load_plan(session, organization_id=row.organization_id, optimization_id=row.optimization_id,
                         lines=row.lines)
        org, options = row.organization_id, dict(row.options)
    opts = KubernetesOptions(namespace=options.get("namespace", "default"),
                             image=options.get("image", KubernetesOptions.image),
                             command=tuple(options["command"]) if options.get("command") else None,
                             region_selector=bool(options.get("region_selector", True)),
                             provider_label=options.get("provider_label"),
                             instance_type_selector=bool(options.get("instance_type_selector", False)),
                             kueue_cluster_queue=options.get("kueue_cluster_queue"))
    docs = ordered(objects(plan, opts))
    about = {"target": "kubernetes", "apply_id": jc.target_id, "optimization_id": plan.optimization_id,
             "namespace": opts.namespace, "objects": [f"{d['kind']}/{d['metadata']['name']}" for d in docs]}
    before = hooks.emit(jc.ctx, org, "deploy.before", about, blocking=True, subject_id=jc.target_id)
    if not before.ok:
        raise JobInputError(f"stopped by a deploy.before hook: {before.reason}")
    api = api_client(settings.deploy_kubeconfig, settings.deploy_kube_context)
    applied: list[Applied] = []
    try:
        for number, doc in enumerate(docs, start=1):
            jc.check_canceled()
            done = apply_object(api, doc)
            applied.append(done)
            jc.progress("apply", percent=100.0 * number / max(1, len(docs)),
                        message=f"{done.kind}/{done.name}: HTTP {done.status}", object=done.as_dict())
    except ProvisionError as exc:
        _finish(jc, org, about, applied, error=exc.message)
        if isinstance(exc, ProviderUnavailable):
            raise TransientJobError(exc.message) from exc
        raise JobInputError(exc.message) from exc
    finally:
        api.close()
    _finish(jc, org, about, applied, error=None)
    return "finished"


def _finish(jc: JobContext, org: str, about: dict[str, Any], applied: list[Applied], *, error: str | None) -> None:
    with jc.ctx.db.session() as session:
        row = session.get(KubernetesApply, jc.target_id)
        if row is not None:
            row.applied = [a.as_dict() for a in applied]
            row.error = error
    outcome = {**about, "applied": [a.as_dict() for a in applied], "ok": error is None, "error": error}
    hooks.emit(jc.ctx, org, "deploy.after", outcome, blocking=False, subject_id=jc.target_id)
