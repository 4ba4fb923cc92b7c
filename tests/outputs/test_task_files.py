"""SkyPilot task YAML and dstack run configurations, checked against each tool's documented fields.

Neither tool can be installed here (skypilot and dstack pull cloud SDKs and servers far beyond the
lock), so the check is a JSON Schema written from the published references: SkyPilot's own
``sky/utils/schemas.py`` (task schema and ``get_resources_schema``: the property names, ``cloud`` among
``ALL_CLOUDS``, ``accelerators`` one name with a count, ``use_spot`` boolean, ``max_hourly_cost`` > 0)
and dstack's configuration reference (``type: task|service``, ``nodes``/``replicas``, ``resources.gpu``
as ``name:memory:count``, profile fields ``backends`` from BackendType, ``regions``,
``instance_types``, ``spot_policy`` spot|on-demand|auto, ``max_price``). Golden files pin the output.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import jsonschema
import pytest
import yaml

from cloudarb.deploy.renderers import Plan, render
from tests.outputs.support import check_golden, fleet_plan, mixed_plan

SKY_CLOUDS = ["aws", "azure", "gcp", "ibm", "lambda", "scp", "oci", "kubernetes", "runpod", "vast", "vsphere", "cudo",
              "fluidstack", "paperspace", "do", "nebius", "ssh", "hyperbolic"]
SKY_RESOURCE_FIELDS = ["cloud", "region", "zone", "infra", "cpus", "memory", "accelerators", "instance_type",
                       "use_spot", "job_recovery", "volumes", "disk_size", "disk_tier", "network_tier", "local_disk",
                       "max_hourly_cost", "ports", "labels", "accelerator_args", "image_id", "autostop", "priority",
                       "any_of", "ordered"]
SKYPILOT_TASK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "workdir": {"type": "string"},
        "num_nodes": {"type": "integer", "minimum": 1},
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "propertyNames": {"enum": SKY_RESOURCE_FIELDS},
            "properties": {
                "cloud": {"enum": SKY_CLOUDS},
                "region": {"type": "string"},
                "instance_type": {"type": "string"},
                "accelerators": {"type": "object", "maxProperties": 1, "minProperties": 1,
                                 "additionalProperties": {"type": "integer", "minimum": 1}},
                "use_spot": {"type": "boolean"},
                "max_hourly_cost": {"type": "number", "exclusiveMinimum": 0},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["cloud", "region", "instance_type", "accelerators", "use_spot"],
        },
        "envs": {"type": "object", "additionalProperties": {"type": "string"}},
        "setup": {"type": "string"},
        "run": {"type": "string"},
        "file_mounts": {"type": "object"},
    },
    "required": ["name", "num_nodes", "resources", "run"],
}
DSTACK_BACKENDS = ["aws", "azure", "cudo", "datacrunch", "gcp", "kubernetes", "lambda", "nebius", "oci", "runpod",
                   "tensordock", "vastai", "vultr"]
_PROFILE = {
    "backends": {"type": "array", "items": {"enum": DSTACK_BACKENDS}, "minItems": 1},
    "regions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "instance_types": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "spot_policy": {"enum": ["spot", "on-demand", "auto"]},
    "max_price": {"type": "number", "exclusiveMinimum": 0},
}
_COMMON = {
    "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,40}$"},
    "commands": {"type": "array", "items": {"type": "string"}},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "resources": {"type": "object", "additionalProperties": False,
                  "properties": {"gpu": {"type": "string", "pattern": r"^[A-Za-z0-9]+(:[0-9.]+GB)?:[0-9]+$"}},
                  "required": ["gpu"]},
    **_PROFILE,
}
DSTACK_RUN = {
    "oneOf": [
        {"type": "object", "additionalProperties": False,
         "properties": {"type": {"const": "task"}, "nodes": {"type": "integer", "minimum": 1}, **_COMMON},
         "required": ["type", "name", "commands", "resources", "nodes"]},
        {"type": "object", "additionalProperties": False,
         "properties": {"type": {"const": "service"}, "port": {"type": "integer"},
                        "replicas": {"type": "integer", "minimum": 1}, **_COMMON},
         "required": ["type", "name", "commands", "resources", "port", "replicas"]},
    ]
}
PLANS = {"fleet": fleet_plan, "mixed": mixed_plan}


def loaded(plan: Plan, fmt: str) -> dict[str, dict[str, Any]]:
    return {f.path: yaml.safe_load(f.content) for f in render(plan, fmt).files}


@pytest.mark.parametrize("which", PLANS)
def test_skypilot_tasks_follow_the_schema_and_the_line(which: str) -> None:
    plan = PLANS[which]()
    rendered = render(plan, "skypilot")
    tasks = loaded(plan, "skypilot")
    by_key = {plan.key(ln): ln for ln in plan.lines}
    for path, task in tasks.items():
        jsonschema.validate(task, SKYPILOT_TASK)
        line = by_key[task["name"]]
        res = task["resources"]
        assert path == f"{task['name']}.yaml"
        assert task["num_nodes"] == line.instances
        assert res["region"] == line.region and res["instance_type"] == line.instance_type
        assert list(res["accelerators"].values()) == [line.gpus_per_instance]
        assert res["use_spot"] is line.spot
        assert res["max_hourly_cost"] == pytest.approx(line.hourly_cost / line.instances)
    assert len(tasks) + len(rendered.skipped) == len(plan.lines)


@pytest.mark.parametrize("which", PLANS)
def test_dstack_configurations_follow_the_schema_and_the_line(which: str) -> None:
    plan = PLANS[which]()
    rendered = render(plan, "dstack")
    confs = loaded(plan, "dstack")
    by_key = {plan.key(ln): ln for ln in plan.lines}
    for conf in confs.values():
        jsonschema.validate(conf, DSTACK_RUN)
        line = by_key[conf["name"]]
        service = plan.workload(line.workload_id).workload_type == "inference"
        assert conf["type"] == ("service" if service else "task")
        assert conf.get("replicas" if service else "nodes") == line.instances
        assert conf["resources"]["gpu"].endswith(f":{line.gpus_per_instance}")
        assert conf["regions"] == [line.region] and conf["instance_types"] == [line.instance_type]
        assert conf["spot_policy"] == ("spot" if line.spot else "on-demand")
        assert conf["max_price"] == pytest.approx(line.hourly_cost / line.instances)
    assert len(confs) + len(rendered.skipped) == len(plan.lines)


def test_schemas_reject_what_the_tools_would() -> None:
    task = next(iter(loaded(fleet_plan(), "skypilot").values()))
    bad_resources: list[dict[str, Any]] = [{"cloud": "lambdalabs"}, {"accelerators": {"A100": 8, "H100": 8}},
                                           {"spot": True}, {"max_hourly_cost": 0}]
    for bad in bad_resources:
        broken = {**task, "resources": {**task["resources"], **bad}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SKYPILOT_TASK)
    conf = next(iter(loaded(fleet_plan(), "dstack").values()))
    bad_confs: list[dict[str, Any]] = [{"backends": ["vast"]}, {"spot_policy": "spot-only"},
                                       {"resources": {"gpu": "8xA100"}}]
    for bad in bad_confs:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**conf, **bad}, DSTACK_RUN)


def test_providers_the_tools_lack_are_listed() -> None:
    plan = mixed_plan()
    assert [(s.line, s.provider) for s in render(plan, "skypilot").skipped] == [(3, "local")]
    assert [(s.line, s.provider) for s in render(plan, "dstack").skipped] == [(3, "local")]


def test_csv_has_every_line() -> None:
    plan = mixed_plan()
    rows = list(csv.DictReader(io.StringIO(render(plan, "csv").file("allocation.csv").content)))
    assert [int(r["line"]) for r in rows] == [ln.index for ln in plan.lines]
    assert [int(r["gpus_per_instance"]) for r in rows] == [ln.gpus_per_instance for ln in plan.lines]
    assert rows[3]["provider"] == "local" and rows[0]["spot"] == "true"


@pytest.mark.parametrize("fmt", ["skypilot", "dstack", "csv"])
def test_golden_fleet(fmt: str) -> None:
    check_golden(render(fleet_plan(), fmt), fmt)
