"""Kubernetes manifests: strict schema validation for every built-in kind (1.30 and the newest bundled
version), the semantic checks schemas miss, Kueue objects against their documented fields, golden files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from cloudarb.deploy.renderers import Plan, accelerators, render
from cloudarb.deploy.renderers.kubernetes import (
    GPU_RESOURCE,
    KUEUE_QUEUE_LABEL,
    PRODUCT_LABEL,
    REGION_LABEL,
    SPOT_TOLERATIONS,
    KubernetesOptions,
    objects,
)
from tests.outputs.support import check_golden, fleet_plan, mixed_plan

BUILTIN = {"Job", "Deployment", "PodDisruptionBudget"}
VERSIONS = ("1.30.0", latest_version())
SPOT_KEYS = {t["key"] for t in SPOT_TOLERATIONS}
KUEUE_FIELDS = {
    # kueue.x-k8s.io/v1beta1 API reference (kueue.sigs.k8s.io/docs/reference/kueue.v1beta1)
    "LocalQueue": {"clusterQueue", "stopPolicy", "fairSharing"},
    "ResourceFlavor": {"nodeLabels", "nodeTaints", "tolerations", "topologyName"},
}
PLANS = {"fleet": fleet_plan, "mixed": mixed_plan}
KUEUE = KubernetesOptions(kueue_cluster_queue="team-a", namespace="ml")


def all_docs(plan: Plan, options: KubernetesOptions | None = None) -> list[dict[str, Any]]:
    return [d for docs in objects(plan, options).values() for d in docs]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def semantic_problems(plan: Plan, docs: list[dict[str, Any]]) -> list[str]:
    """What schema validation cannot see: GPU counts, where GPUs are asked, placement against the line."""
    problems: list[str] = []
    by_key = {plan.key(ln): ln for ln in plan.lines}
    budgets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    for doc in docs:
        if doc["kind"] not in ("Job", "Deployment"):
            continue
        name = doc["metadata"]["name"]
        line = by_key.get(name)
        if line is None:
            problems.append(f"{name}: no line")
            continue
        kind = plan.workload(line.workload_id).workload_type
        expected_kind = "Deployment" if kind == "inference" else "Job"
        if doc["kind"] != expected_kind:
            problems.append(f"{name}: {doc['kind']} for a {kind} workload")
        count = doc["spec"]["replicas"] if doc["kind"] == "Deployment" else doc["spec"]["parallelism"]
        if count != line.instances or (doc["kind"] == "Job" and doc["spec"]["completions"] != line.instances):
            problems.append(f"{name}: {count} pods for {line.instances} machines")
        for c in pod_spec(doc)["containers"]:
            limits = c.get("resources", {}).get("limits", {})
            requests = c.get("resources", {}).get("requests", {})
            gpus = limits.get(GPU_RESOURCE)
            if type(gpus) is not int or gpus < 1:
                problems.append(f"{name}: GPU limit {gpus!r} is not a positive integer")
            elif gpus != line.gpus_per_instance:
                problems.append(f"{name}: {gpus} GPUs per pod, the line has {line.gpus_per_instance} per machine")
            if GPU_RESOURCE in requests and requests[GPU_RESOURCE] != gpus:
                problems.append(f"{name}: GPU request differs from the limit")
        terms = pod_spec(doc)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"]
        for term in terms:
            exprs = {e["key"]: e for e in term["matchExpressions"]}
            products = exprs.get(PRODUCT_LABEL, {}).get("values", [])
            models = {accelerators.model_of_product(p) or line.gpu_model for p in products}
            if not products or models != {line.gpu_model}:
                problems.append(f"{name}: GPU products {products} are not {line.gpu_model}")
            region = exprs.get(REGION_LABEL)
            if region is not None and region["values"] != [line.region]:
                problems.append(f"{name}: region {region['values']} is not {line.region}")
            provider = exprs.get("cloudarb.io/provider")
            if provider is not None and provider["values"] != [line.provider]:
                problems.append(f"{name}: provider {provider['values']} is not {line.provider}")
            itype = exprs.get("node.kubernetes.io/instance-type")
            if itype is not None and itype["values"] != [line.instance_type]:
                problems.append(f"{name}: instance type {itype['values']} is not {line.instance_type}")
        tolerated = {t["key"] for t in pod_spec(doc).get("tolerations", [])}
        if line.spot and not SPOT_KEYS <= tolerated:
            problems.append(f"{name}: a spot line without spot tolerations")
        if not line.spot and tolerated & SPOT_KEYS:
            problems.append(f"{name}: an on-demand line tolerates spot nodes")
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if doc["kind"] == "Deployment":
            if any(labels.get(k) != v for k, v in doc["spec"]["selector"]["matchLabels"].items()):
                problems.append(f"{name}: selector does not match the pod labels")
            budget = budgets.get(name)
            if budget is None:
                problems.append(f"{name}: an inference Deployment without a PodDisruptionBudget")
            elif any(labels.get(k) != v for k, v in budget["spec"]["selector"]["matchLabels"].items()):
                problems.append(f"{name}: the PodDisruptionBudget selects other pods")
    return problems


@pytest.mark.parametrize("options", [None, KUEUE, KubernetesOptions(provider_label="cloudarb.io/provider",
                                                                    instance_type_selector=True)],
                         ids=["plain", "kueue", "multi-provider"])
@pytest.mark.parametrize("which", PLANS)
def test_builtin_kinds_pass_strict_validation(which: str, options: KubernetesOptions | None) -> None:
    docs = [d for d in all_docs(PLANS[which](), options) if d["kind"] in BUILTIN]
    assert {d["kind"] for d in docs} == BUILTIN
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    job = next(d for d in all_docs(fleet_plan()) if d["kind"] == "Job")
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 8
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[0], strict=True)


SPANNING = KubernetesOptions(provider_label="cloudarb.io/provider", instance_type_selector=True)


@pytest.mark.parametrize("options", [None, KUEUE, KubernetesOptions(region_selector=False), SPANNING],
                         ids=["plain", "kueue", "one-region", "multi-provider"])
@pytest.mark.parametrize("which", PLANS)
def test_semantics_match_each_line(which: str, options: KubernetesOptions | None) -> None:
    plan = PLANS[which]()
    docs = all_docs(plan, options)
    assert semantic_problems(plan, docs) == []
    keys = {d["metadata"]["name"] for d in docs if d["kind"] in ("Job", "Deployment")}
    assert keys == {plan.key(ln) for ln in plan.lines}  # one object per line, none dropped


def test_a_cluster_spanning_providers_pins_provider_and_instance_type() -> None:
    plan = mixed_plan()
    for doc in (d for d in all_docs(plan, SPANNING) if d["kind"] in ("Job", "Deployment")):
        exprs = pod_spec(doc)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"][0]["matchExpressions"]
        assert {e["key"] for e in exprs} == {PRODUCT_LABEL, REGION_LABEL, "cloudarb.io/provider",
                                             "node.kubernetes.io/instance-type"}


def test_semantic_checks_catch_what_schemas_miss() -> None:
    plan = mixed_plan()
    good = all_docs(plan)
    def string_count(c: dict[str, Any]) -> None:
        c["resources"]["limits"][GPU_RESOURCE] = "8"

    def request_differs(c: dict[str, Any]) -> None:
        c["resources"]["requests"] = {GPU_RESOURCE: 1}

    def nothing(c: dict[str, Any]) -> None:
        return None

    cases: dict[str, Callable[[dict[str, Any]], None]] = {
        "string count": string_count, "request differs": request_differs, "wrong model": nothing}
    for label, mutate in cases.items():
        docs = copy.deepcopy(good)
        target = next(d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == plan.key(plan.lines[0]))
        if label == "wrong model":
            pod_spec(target)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = ["Tesla-T4"]
        else:
            mutate(pod_spec(target)["containers"][0])
        kubernetes_validate.validate(target, VERSIONS[0], strict=True)  # the schema passes it...
        assert semantic_problems(plan, docs), label  # ...the semantic check does not
    docs = copy.deepcopy(good)
    spot_job = next(d for d in docs if d["metadata"]["name"] == plan.key(plan.lines[0]))
    pod_spec(spot_job)["tolerations"] = pod_spec(spot_job)["tolerations"][:1]
    assert any("spot tolerations" in p for p in semantic_problems(plan, docs))
    docs = [d for d in copy.deepcopy(good) if d["kind"] != "PodDisruptionBudget"]
    assert any("PodDisruptionBudget" in p for p in semantic_problems(plan, docs))


def test_kueue_objects_use_documented_fields_and_match_the_jobs() -> None:
    plan = mixed_plan()
    docs = all_docs(plan, KUEUE)
    queues = [d for d in docs if d["kind"] == "LocalQueue"]
    flavors = [d for d in docs if d["kind"] == "ResourceFlavor"]
    assert len(queues) == 1 and queues[0]["spec"]["clusterQueue"] == "team-a"
    assert queues[0]["metadata"]["namespace"] == "ml"
    for doc in queues + flavors:
        assert doc["apiVersion"] == "kueue.x-k8s.io/v1beta1"
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        assert set(doc["spec"]) <= KUEUE_FIELDS[doc["kind"]], doc["spec"]
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(doc, VERSIONS[0], strict=True)
    assert all("namespace" not in f["metadata"] for f in flavors)  # cluster-scoped
    wanted = {(accelerators.gfd_products(ln.gpu_model)[0], ln.region, ln.spot) for ln in plan.lines}
    have = {(f["spec"]["nodeLabels"][PRODUCT_LABEL], f["spec"]["nodeLabels"][REGION_LABEL],
             "tolerations" in f["spec"]) for f in flavors}
    assert have == wanted
    for job in (d for d in docs if d["kind"] == "Job"):
        assert job["metadata"]["labels"][KUEUE_QUEUE_LABEL] == queues[0]["metadata"]["name"]
        assert job["spec"]["suspend"] is True


def test_files_are_yaml_streams_of_the_objects() -> None:
    plan = fleet_plan()
    rendered = render(plan, "kubernetes")
    as_data = objects(plan)
    for f in rendered.files:
        assert list(yaml.safe_load_all(f.content)) == as_data[f.path]


def test_golden_fleet() -> None:
    check_golden(render(fleet_plan(), "kubernetes"), "kubernetes")
