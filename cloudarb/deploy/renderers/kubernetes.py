"""Kubernetes manifests: per workload a Job (training, batch) or a Deployment (inference) for each line.

Each line becomes one object pinned to what the line chose: a required node affinity on the GPU model
(``nvidia.com/gpu.product``, the label NVIDIA GPU feature discovery sets) and, for a cluster that spans
regions, on ``topology.kubernetes.io/region``; optionally on a node label naming the provider (there is
no standard one: ``provider_label``) and on ``node.kubernetes.io/instance-type``. Its pods ask for the line's GPUs per machine as
``nvidia.com/gpu`` limits only (the scheduler reads limits for extended resources; requests, if given,
must equal them). Spot lines tolerate the spot taints of GKE, AKS and CloudArb's own
``cloudarb.io/spot``; on-demand lines do not, so they never land on a tainted spot node. A Job of N
machines runs N indexed pods in parallel; a Deployment of N replicas has a PodDisruptionBudget letting
one pod go at a time. With ``kueue_cluster_queue`` set, a LocalQueue and one ResourceFlavor per
(GPU model, region, spot) are added and the Jobs are labelled for the queue (Kueue admits them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from cloudarb.deploy.renderers import accelerators
from cloudarb.deploy.renderers.plan import DUMPER, TAG_EXPIRES, Line, Plan, Rendered, RenderedFile, slug

FORMAT = "kubernetes"
GPU_RESOURCE = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
REGION_LABEL = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
KUEUE_API = "kueue.x-k8s.io/v1beta1"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
SPOT_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
    {"key": "cloudarb.io/spot", "operator": "Exists", "effect": "NoSchedule"},
)
SERVICE_TYPES = ("inference",)
JOB_COMMAND = ("nvidia-smi",)
SERVICE_COMMAND = ("sh", "-c", "nvidia-smi && exec sleep infinity")


@dataclass(frozen=True)
class KubernetesOptions:
    namespace: str = "default"
    image: str = "nvidia/cuda:12.4.1-base-ubuntu22.04"
    command: tuple[str, ...] | None = None  # None: a GPU check; a Deployment's then stays up (a service)
    region_selector: bool = True
    provider_label: str | None = None  # a node label naming the provider, for clusters spanning providers
    instance_type_selector: bool = False  # also pin node.kubernetes.io/instance-type (cloud-managed nodes)
    kueue_cluster_queue: str | None = None


def _labels(plan: Plan, line: Line) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": slug(line.workload_id, limit=63),
        "app.kubernetes.io/managed-by": "cloudarb",
        "cloudarb.io/key": plan.key(line),
        "cloudarb.io/workload": slug(line.workload_id, limit=63),
        "cloudarb.io/optimization": slug(plan.optimization_id, limit=63),
    }


def _annotations(plan: Plan, line: Line) -> dict[str, str]:
    notes = {
        "cloudarb.io/workload-id": line.workload_id,
        "cloudarb.io/provider": line.provider + (f":{line.seller}" if line.seller else ""),
        "cloudarb.io/region": line.region,
        "cloudarb.io/instance-type": line.instance_type,
        "cloudarb.io/gpu-model": line.gpu_model,
        "cloudarb.io/hourly-cost": f"{line.hourly_cost:.4f}",
        "cloudarb.io/spot": "true" if line.spot else "false",
    }
    if not accelerators.known(line.gpu_model):
        notes["cloudarb.io/gpu-product-derived"] = "true"
    tags = plan.tags(line)
    if TAG_EXPIRES in tags:
        notes["cloudarb.io/expires-at"] = tags[TAG_EXPIRES]
    return notes


def _affinity(line: Line, options: KubernetesOptions) -> dict[str, Any]:
    expressions: list[dict[str, Any]] = [
        {"key": PRODUCT_LABEL, "operator": "In", "values": list(accelerators.gfd_products(line.gpu_model))}
    ]
    if options.region_selector:
        expressions.append({"key": REGION_LABEL, "operator": "In", "values": [line.region]})
    if options.provider_label:
        expressions.append({"key": options.provider_label, "operator": "In", "values": [line.provider]})
    if options.instance_type_selector:
        expressions.append({"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [line.instance_type]})
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": expressions}]}}}


def _tolerations(line: Line) -> list[dict[str, str]]:
    return [dict(GPU_TOLERATION), *(dict(t) for t in SPOT_TOLERATIONS)] if line.spot else [dict(GPU_TOLERATION)]


def _pod(plan: Plan, line: Line, options: KubernetesOptions, *, restart: str) -> dict[str, Any]:
    container = {
        "name": slug(line.workload_id, limit=63),
        "image": options.image,
        "command": list(options.command or (JOB_COMMAND if restart == "OnFailure" else SERVICE_COMMAND)),
        "env": [{"name": "CLOUDARB_WORKLOAD", "value": line.workload_id},
                {"name": "CLOUDARB_KEY", "value": plan.key(line)}],
        "resources": {"limits": {GPU_RESOURCE: line.gpus_per_instance}},
    }
    return {
        "metadata": {"labels": _labels(plan, line)},
        "spec": {"restartPolicy": restart, "affinity": _affinity(line, options),
                 "tolerations": _tolerations(line), "containers": [container]},
    }


def _meta(plan: Plan, line: Line, options: KubernetesOptions, *, queued: bool = False) -> dict[str, Any]:
    labels = _labels(plan, line)
    if queued and options.kueue_cluster_queue:
        labels[KUEUE_QUEUE_LABEL] = _local_queue(options)
    return {"name": plan.key(line), "namespace": options.namespace, "labels": labels,
            "annotations": _annotations(plan, line)}


def _job(plan: Plan, line: Line, options: KubernetesOptions) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "completions": line.instances,
        "parallelism": line.instances,
        "completionMode": "Indexed",
        "backoffLimit": 6 if line.spot else 2,
        "template": _pod(plan, line, options, restart="OnFailure"),
    }
    if options.kueue_cluster_queue:
        spec["suspend"] = True  # Kueue un-suspends the Job when it admits it
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(plan, line, options, queued=True),
            "spec": spec}


def _deployment(plan: Plan, line: Line, options: KubernetesOptions) -> list[dict[str, Any]]:
    selector = {"matchLabels": {"cloudarb.io/key": plan.key(line)}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan, line, options),
        "spec": {"replicas": line.instances, "selector": selector,
                 "template": _pod(plan, line, options, restart="Always")},
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": plan.key(line), "namespace": options.namespace, "labels": _labels(plan, line)},
        "spec": {"maxUnavailable": 1, "selector": selector},
    }
    return [deployment, budget]


def _local_queue(options: KubernetesOptions) -> str:
    return f"cloudarb-{slug(options.kueue_cluster_queue or 'default', limit=40)}"


def _kueue(plan: Plan, options: KubernetesOptions) -> list[dict[str, Any]]:
    queue = {"apiVersion": KUEUE_API, "kind": "LocalQueue",
             "metadata": {"name": _local_queue(options), "namespace": options.namespace},
             "spec": {"clusterQueue": options.kueue_cluster_queue}}
    flavors: dict[str, dict[str, Any]] = {}
    for line in plan.lines:
        name = slug(f"{line.gpu_model}-{line.region}-{'spot' if line.spot else 'on-demand'}", limit=63)
        node_labels = {PRODUCT_LABEL: accelerators.gfd_products(line.gpu_model)[0]}
        if options.region_selector:
            node_labels[REGION_LABEL] = line.region
        spec: dict[str, Any] = {"nodeLabels": node_labels}
        if line.spot:
            spec["tolerations"] = [dict(t) for t in SPOT_TOLERATIONS]
        flavors.setdefault(name, {"apiVersion": KUEUE_API, "kind": "ResourceFlavor",
                                  "metadata": {"name": name}, "spec": spec})
    return [queue, *flavors.values()]


def objects(plan: Plan, options: KubernetesOptions | None = None) -> dict[str, list[dict[str, Any]]]:
    """The manifests as data, per file name (``<workload>.yaml``, ``kueue.yaml``)."""
    options = options or KubernetesOptions()
    files: dict[str, list[dict[str, Any]]] = {}
    for line in plan.lines:
        kind = plan.workload(line.workload_id).workload_type
        docs = _deployment(plan, line, options) if kind in SERVICE_TYPES else [_job(plan, line, options)]
        files.setdefault(f"{slug(line.workload_id, limit=60)}.yaml", []).extend(docs)
    if options.kueue_cluster_queue and plan.lines:
        files["kueue.yaml"] = _kueue(plan, options)
    return files


def render(plan: Plan, options: KubernetesOptions | None = None) -> Rendered:
    out = []
    for path, docs in objects(plan, options).items():
        text = yaml.dump_all(docs, Dumper=DUMPER, sort_keys=False, default_flow_style=False)
        out.append(RenderedFile(path, f"# CloudArb optimization {plan.optimization_id}\n{text}", "application/yaml"))
    return Rendered(FORMAT, tuple(out))
