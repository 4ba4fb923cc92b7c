"""Provider ``kubernetes``: the objects a Kubernetes apply created on the configured cluster.

A Kubernetes deployment (``cloudarb.deploy.k8s_apply``) records one instance row per object it applies
(a Job, a Deployment, a PodDisruptionBudget), so the deploy core destroys, verifies and reconciles them
like any provider's instances through this module:

- the mark is the label ``cloudarb.io/key`` (the row's key, a valid label value of at most 63
  characters) on the object; ``list_owned`` lists each kind across all namespaces with the label
  selector ``cloudarb.io/key`` (label selectors have no prefix match, so the prefix is checked here),
  every page read (``limit`` / ``continue``);
- ``destroy`` is ``DELETE ...?propagationPolicy=Foreground``: the object stays (with a
  ``deletionTimestamp``) until its pods are gone, so the 404 of a later ``GET`` is proof that nothing
  of it runs any more; a 404 to the ``DELETE`` itself is "already gone";
- ``get`` answers None only on a 404; an object being deleted is ``terminating``; a finished Job is
  ``stopped`` (its pods ended; the object remains until deleted);
- ``annotate`` is a JSON merge patch of ``metadata.annotations`` (``Content-Type:
  application/merge-patch+json``): it changes only the annotations it names and, unlike an apply, never
  creates an object (None on the 404 of a gone one). Extending a deployment writes its new expiry this way.

Creation goes through the apply job (server-side apply of the rendered manifest), never ``create``.
The provider id is ``<Kind>/<namespace>/<name>``. Nothing is billed by the cluster to CloudArb: rows
carry a price only when the apply asked to meter the lines' prices.

The client's errors are translated here (``translate``): 401/403 -> ``AuthFailed``, 400/404/422 ->
``InvalidLaunch``, 409/429/5xx and connection failures -> ``ProviderUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from cloudarb.deploy.errors import AuthFailed, InvalidLaunch, ProviderUnavailable, ProvisionError, Unsupported
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    RemoteInstance,
    RemoteState,
)

PROVIDER = "kubernetes"
KEY_LABEL = "cloudarb.io/key"
EXPIRES_ANNOTATION = "cloudarb.io/expires-at"
MERGE_PATCH = "application/merge-patch+json"
PAGE = 250
TIMEOUT_S = 30.0
CAPABILITIES = Capabilities(
    spot=False, stop_start=False, mark="label", idempotency_token=True, list_filter=False,
    billing_granularity_s=1, billing_minimum_s=0, requests_per_s=20.0, burst=10, listing_lag_s=5.0,
    max_key_length=63, provider_ttl=False, reports_rate=False, billing_starts="created",
)
"""Server-side apply by name is idempotent (applying twice updates one object); the API server lists
what it stored at once (a short lag window); label values hold 63 characters."""


@dataclass(frozen=True)
class Kind:
    """One kind of object an apply owns, and its REST collection."""

    kind: str
    group_version: str  # "batch/v1"
    plural: str

    def path(self, namespace: str, name: str) -> str:
        return f"/apis/{self.group_version}/namespaces/{namespace}/{self.plural}/{name}"

    def collection(self) -> str:
        return f"/apis/{self.group_version}/{self.plural}"


OWNED_KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("Job", "batch/v1", "jobs"),
    Kind("Deployment", "apps/v1", "deployments"),
    Kind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
)}
"""Kinds recorded as instance rows (namespaced). Kueue objects are shared cluster configuration:
applied, reported on the deployment, never deleted with it."""


def translate(exc: ApiException, what: str) -> ProvisionError:
    status = exc.status or 0
    detail = f"{what}: HTTP {status} {exc.reason or ''}".strip()
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    if message:
        detail += f": {message}"
    if status in (401, 403):
        return AuthFailed(detail, provider=PROVIDER)
    if status in (400, 404, 422):
        return InvalidLaunch(detail, provider=PROVIDER)
    return ProviderUnavailable(detail, provider=PROVIDER)


def load_client(kubeconfig: Path | str, context: str | None = None, *,
                default_headers: dict[str, str] | None = None) -> k8s.ApiClient:
    """A client of the cluster the kubeconfig names (``default_headers`` win over each method's)."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(config_file=str(kubeconfig), context=context or None,
                                    client_configuration=configuration)
    except (OSError, k8s_config.ConfigException) as exc:
        raise AuthFailed(f"cannot load the kubeconfig {kubeconfig}: {exc}", provider=PROVIDER) from exc
    api = k8s.ApiClient(configuration)
    for name, value in (default_headers or {}).items():
        api.set_default_header(name, value)
    return api


def provider_id(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind}/{namespace or ''}/{name}"


def parse_provider_id(value: str) -> tuple[Kind, str, str]:
    kind, _, rest = value.partition("/")
    namespace, _, name = rest.partition("/")
    if kind not in OWNED_KINDS or not namespace or not name or "/" in name:
        raise InvalidLaunch(f"not a Kubernetes object id: {value!r}", provider=PROVIDER)
    return OWNED_KINDS[kind], namespace, name


def remote_of(kind: str, obj: dict[str, Any]) -> RemoteInstance:
    """An object as the deploy core sees it."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    raw = "present"
    state = RemoteState.RUNNING
    if meta.get("deletionTimestamp"):
        state, raw = RemoteState.TERMINATING, "deleting"
    elif kind == "Job":
        done = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        if done & {"Complete", "Failed"}:
            state, raw = RemoteState.STOPPED, "Complete" if "Complete" in done else "Failed"
        else:
            raw = f"active {status.get('active', 0)}"
    elif kind == "Deployment":
        raw = f"available {status.get('availableReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 0)}"
    return RemoteInstance(provider_id=provider_id(kind, meta.get("namespace"), meta.get("name", "")),
                          key=(meta.get("labels") or {}).get(KEY_LABEL, ""), state=state, raw_state=raw)


class KubernetesProvisioner:
    """Reads, lists and deletes the objects of Kubernetes deployments (see the module's docstring)."""

    key = PROVIDER
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig, *, client: Callable[[], k8s.ApiClient] | None = None,
                 page: int = PAGE) -> None:
        kubeconfig = config.credentials.get("kubeconfig")
        if client is None and not kubeconfig:
            raise AuthFailed("no cluster is configured (CLOUDARB_DEPLOY_KUBECONFIG)", provider=PROVIDER)
        context = config.credentials.get("context") or None
        self._client = client or (lambda: load_client(str(kubeconfig), context))
        self._api: k8s.ApiClient | None = None
        self._page = page

    def _call(self, method: str, path: str, what: str, query: list[tuple[str, str]] | None = None, *,
              gone_ok: bool = False, body: dict[str, Any] | None = None) -> Any:
        """One REST call; with ``gone_ok`` a 404 answers None (the object does not exist). A ``body`` is
        sent as a JSON merge patch (the only call here that sends one)."""
        if self._api is None:
            self._api = self._client()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = MERGE_PATCH
        try:
            response = self._api.call_api(path, method, query_params=query or [], header_params=headers,
                                          body=body, auth_settings=["BearerToken"], _preload_content=False,
                                          _return_http_data_only=True, _request_timeout=TIMEOUT_S)
        except ApiException as exc:
            if gone_ok and exc.status == 404:
                return None
            raise translate(exc, what) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderUnavailable(f"{what}: the API server did not answer: {exc}", provider=PROVIDER) from exc
        try:
            return json.loads(response.data or b"{}")
        except ValueError as exc:
            raise ProviderUnavailable(f"{what}: the API server answered something that is not JSON",
                                      provider=PROVIDER) from exc

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        raise Unsupported("Kubernetes objects are created by the apply job (server-side apply of the rendered "
                          "manifests), not one instance at a time", provider=PROVIDER)

    def get(self, provider_id: str) -> RemoteInstance | None:
        kind, namespace, name = parse_provider_id(provider_id)
        obj = self._call("GET", kind.path(namespace, name), f"read {provider_id}", gone_ok=True)
        return None if obj is None else remote_of(kind.kind, obj)

    def _list(self, kind: Kind, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("labelSelector", selector), ("limit", str(self._page))]
            if token:
                query.append(("continue", token))
            page = self._call("GET", kind.collection(), f"list {kind.plural}", query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        out: list[RemoteInstance] = []
        for kind in OWNED_KINDS.values():
            for obj in self._list(kind, KEY_LABEL):
                remote = remote_of(kind.kind, obj)
                if remote.key.startswith(prefix):
                    out.append(remote)
        return out

    def find(self, key: str) -> RemoteInstance | None:
        for kind in OWNED_KINDS.values():
            for obj in self._list(kind, f"{KEY_LABEL}={key}"):
                return remote_of(kind.kind, obj)
        return None

    def destroy(self, provider_id: str) -> None:
        kind, namespace, name = parse_provider_id(provider_id)
        self._call("DELETE", kind.path(namespace, name), f"delete {provider_id}",
                   [("propagationPolicy", "Foreground")], gone_ok=True)

    def annotate(self, provider_id: str, annotations: dict[str, str]) -> dict[str, str] | None:
        """Set these annotations on the object (a merge patch; others are left alone); returns the
        annotations the API server answers with, or None when the object is gone (404)."""
        kind, namespace, name = parse_provider_id(provider_id)
        obj = self._call("PATCH", kind.path(namespace, name), f"annotate {provider_id}", gone_ok=True,
                         body={"metadata": {"annotations": annotations}})
        if obj is None:
            return None
        found: dict[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
        return found

    def stop(self, provider_id: str) -> None:
        raise Unsupported("Kubernetes objects cannot be stopped; delete them", provider=PROVIDER)

    def start(self, provider_id: str) -> None:
        raise Unsupported("Kubernetes objects cannot be started", provider=PROVIDER)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


def provisioner(config: ProviderConfig) -> KubernetesProvisioner:
    """The registry's entry point for key ``kubernetes``."""
    return KubernetesProvisioner(config)
