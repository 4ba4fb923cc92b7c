"""Fixed plans for the renderer tests and the golden-file check.

``fleet_plan`` is ``examples/fleet.json`` solved embedded on the bundled snapshot (kept in
``data/fleet_solution.json`` so the golden files do not move with solver or price changes); it chose
AWS, Lambda and Azure. ``mixed_plan`` adds what the fleet lacks: GCP (an accelerator-optimized spot
machine and an N1 machine with an attached T4), an inference line on GCP, and providers without a
Terraform provider, SkyPilot cloud or dstack backend (``local``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cloudarb.deploy.renderers import Line, Plan, Rendered, WorkloadShape

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("CLOUDARB_UPDATE_GOLDEN") == "1"


def fleet_solution() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / "data" / "fleet_solution.json").read_text())
    return data


def _shapes(request: dict[str, Any]) -> dict[str, WorkloadShape]:
    return {w["id"]: WorkloadShape(id=w["id"], workload_type=w.get("workload_type", "training"),
                                   spot_tolerant=w.get("spot_tolerant", False),
                                   gpus_per_node=w.get("gpus_per_node", 1)) for w in request["workloads"]}


def fleet_plan() -> Plan:
    data = fleet_solution()
    lines = tuple(Line(index=i, workload_id=a["workload_id"], offer_key=a["offer_key"], provider=a["provider"],
                       seller=a["seller"], region=a["region"], instance_type=a["instance_type"],
                       gpu_model=a["gpu_model"], instances=a["instances"], gpus=a["gpus"],
                       hourly_cost=a["hourly_cost"], spot=a["spot"]) for i, a in enumerate(data["allocations"]))
    return Plan(optimization_id=data["optimization_id"], name=data["name"], lines=lines,
                workloads=_shapes(data["request"]))


def mixed_plan() -> Plan:
    def line(i: int, wl: str, provider: str, region: str, itype: str, model: str, n: int, gpus: int, cost: float,
             spot: bool) -> Line:
        return Line(index=i, workload_id=wl, offer_key=f"k{i}", provider=provider, seller="", region=region,
                    instance_type=itype, gpu_model=model, instances=n, gpus=gpus, hourly_cost=cost, spot=spot)

    lines = (
        line(0, "pretrain", "gcp", "us-central1", "a3-highgpu-8g", "H100 SXM", 2, 16, 48.2, True),
        line(1, "serve", "gcp", "europe-west4", "n1-standard-8+1xnvidia-tesla-t4", "T4", 3, 3, 1.65, False),
        line(2, "serve", "aws", "us-east-1", "g6.xlarge", "L4", 2, 2, 1.6096, False),
        line(3, "batch", "local", "lab-rack-1", "ws-4090", "RTX 4090", 1, 2, 0.0, False),
        line(4, "batch", "runpod", "EU-RO-1", "NVIDIA GeForce RTX 4090", "RTX 4090", 4, 4, 1.36, True),
        line(5, "pretrain", "azure", "eastus", "Standard_ND96isr_H100_v5", "H100 SXM", 1, 8, 98.32, False),
    )
    shapes = {"pretrain": WorkloadShape("pretrain", "training", True, 8),
              "serve": WorkloadShape("serve", "inference", False, 1),
              "batch": WorkloadShape("batch", "batch", True, 1)}
    return Plan(optimization_id="0123456789abcdef0123456789abcdef", name="mixed", lines=lines, workloads=shapes)


def check_golden(rendered: Rendered, folder: str) -> None:
    """Every rendered file equals its golden copy (CLOUDARB_UPDATE_GOLDEN=1 rewrites them)."""
    root = GOLDEN / folder
    if UPDATE:
        root.mkdir(parents=True, exist_ok=True)
        for old in root.iterdir():
            old.unlink()
        for f in rendered.files:
            (root / f.path).write_text(f.content)
    expected = sorted(p.name for p in root.iterdir())
    assert sorted(f.path for f in rendered.files) == expected
    for f in rendered.files:
        assert f.content == (root / f.path).read_text(), f"{folder}/{f.path} differs from its golden file"


def store_fleet(session: Any, organization_id: str, *, status: str = "finished") -> str:
    """The fixed fleet solution as a stored optimization of ``organization_id`` (same id as the goldens)."""
    from cloudarb.db.models import AllocationLine, OptimizationRequest

    data = fleet_solution()
    session.add(OptimizationRequest(id=data["optimization_id"], organization_id=organization_id, name=data["name"],
                                    status=status, request=data["request"]))
    session.flush()
    for a in data["allocations"]:
        session.add(AllocationLine(optimization_id=data["optimization_id"], **a))
    return str(data["optimization_id"])
