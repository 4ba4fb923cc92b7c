"""SkyPilot task YAML, one file per line, pinned to exactly what the plan chose.

Fields are those of SkyPilot's own task schema (skypilot-org/skypilot ``sky/utils/schemas.py``,
``get_resources_schema`` and the task schema): ``resources.cloud`` / ``region`` / ``instance_type`` /
``accelerators`` (``{name: count}``, SkyPilot's accelerator names) / ``use_spot`` / ``max_hourly_cost``
(the chosen price of one machine, so SkyPilot's optimizer never picks a dearer one) / ``labels``, and
``num_nodes``, ``envs``, ``run`` at the top. Providers SkyPilot has no cloud for are listed as skipped.
"""

from __future__ import annotations

from typing import Any

import yaml

from cloudarb.deploy.renderers import accelerators
from cloudarb.deploy.renderers.plan import DUMPER, Line, Plan, Rendered, RenderedFile, Skipped

FORMAT = "skypilot"
CLOUDS = {"aws": "aws", "gcp": "gcp", "azure": "azure", "lambda": "lambda", "runpod": "runpod", "vast": "vast",
          "nebius": "nebius", "fluidstack": "fluidstack", "paperspace": "paperspace", "cudo": "cudo", "oci": "oci",
          "digitalocean": "do", "hyperbolic": "hyperbolic"}
"""CloudArb provider key -> SkyPilot cloud name (``sky/skylet/constants.py`` ALL_CLOUDS)."""


def task(plan: Plan, line: Line) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "cloud": CLOUDS[line.provider],
        "region": line.region,
        "instance_type": line.instance_type,
        "accelerators": {accelerators.skypilot_name(line.gpu_model): line.gpus_per_instance},
        "use_spot": line.spot,
        "labels": plan.labels(line),
    }
    if line.price_per_instance > 0:  # SkyPilot's schema: a number above 0
        resources["max_hourly_cost"] = line.price_per_instance
    return {
        "name": plan.key(line),
        "num_nodes": line.instances,
        "resources": resources,
        "envs": {"CLOUDARB_OPTIMIZATION": plan.optimization_id, "CLOUDARB_WORKLOAD": line.workload_id,
                 "CLOUDARB_KEY": plan.key(line)},
        "run": "nvidia-smi\n",
    }


def render(plan: Plan) -> Rendered:
    files: list[RenderedFile] = []
    skipped: list[Skipped] = []
    for line in plan.lines:
        if line.provider not in CLOUDS:
            skipped.append(Skipped(line.index, line.workload_id, line.provider,
                                   f"SkyPilot has no cloud for provider '{line.provider}'"))
            continue
        text = yaml.dump(task(plan, line), Dumper=DUMPER, sort_keys=False)
        head = f"# CloudArb optimization {plan.optimization_id}, line {line.index}: sky launch {plan.key(line)}.yaml\n"
        files.append(RenderedFile(f"{plan.key(line)}.yaml", head + text, "application/yaml"))
    return Rendered(FORMAT, tuple(files), tuple(skipped))
