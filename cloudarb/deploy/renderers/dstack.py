"""dstack run configurations, one file per line (``<key>.dstack.yml``).

Fields follow dstack's configuration reference (``type: task`` / ``service``; ``nodes``, ``resources.gpu``
as ``<name>:<memory>:<count>``, and the profile fields ``backends``, ``regions``, ``instance_types``,
``spot_policy`` spot|on-demand, ``max_price`` = the chosen hourly price of one machine). An inference
workload becomes a ``service`` with ``replicas``; training and batch become a multi-node ``task``.
Providers dstack has no backend for are listed as skipped.
"""

from __future__ import annotations

from typing import Any

import yaml

from cloudarb.deploy.renderers import accelerators
from cloudarb.deploy.renderers.plan import DUMPER, Line, Plan, Rendered, RenderedFile, Skipped

FORMAT = "dstack"
BACKENDS = {"aws": "aws", "gcp": "gcp", "azure": "azure", "lambda": "lambda", "runpod": "runpod", "vast": "vastai",
            "tensordock": "tensordock", "nebius": "nebius", "cudo": "cudo", "datacrunch": "datacrunch",
            "oci": "oci", "vultr": "vultr"}
"""CloudArb provider key -> dstack backend type (``dstack._internal.core.models.backends.base.BackendType``)."""
SERVICE_PORT = 8000


def configuration(plan: Plan, line: Line) -> dict[str, Any]:
    service = plan.workload(line.workload_id).workload_type == "inference"
    conf: dict[str, Any] = {"type": "service" if service else "task", "name": plan.key(line)}
    if service:
        conf.update(port=SERVICE_PORT, replicas=line.instances)
    else:
        conf["nodes"] = line.instances
    conf.update(
        commands=["nvidia-smi"],
        env={"CLOUDARB_OPTIMIZATION": plan.optimization_id, "CLOUDARB_WORKLOAD": line.workload_id,
             "CLOUDARB_KEY": plan.key(line)},
        resources={"gpu": accelerators.dstack_gpu(line.gpu_model, line.gpus_per_instance)},
        backends=[BACKENDS[line.provider]],
        regions=[line.region],
        instance_types=[line.instance_type],
        spot_policy="spot" if line.spot else "on-demand",
    )
    if line.price_per_instance > 0:
        conf["max_price"] = line.price_per_instance
    return conf


def render(plan: Plan) -> Rendered:
    files: list[RenderedFile] = []
    skipped: list[Skipped] = []
    for line in plan.lines:
        if line.provider not in BACKENDS:
            skipped.append(Skipped(line.index, line.workload_id, line.provider,
                                   f"dstack has no backend for provider '{line.provider}'"))
            continue
        text = yaml.dump(configuration(plan, line), Dumper=DUMPER, sort_keys=False)
        head = f"# CloudArb optimization {plan.optimization_id}, line {line.index}: dstack apply -f {plan.key(line)}.dstack.yml\n"
        files.append(RenderedFile(f"{plan.key(line)}.dstack.yml", head + text, "application/yaml"))
    return Rendered(FORMAT, tuple(files), tuple(skipped))
