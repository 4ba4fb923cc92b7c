"""Test helpers: host reports, registered nodes, placements."""

from __future__ import annotations

from cloudarb.agent.protocol import GpuReport, HostReport, MigDevice, RegisterRequest, RegisterResponse
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models_nodes import Node
from cloudarb.nodes import agents, placements, service
from cloudarb.nodes.placements import PlacementRequest


def host(name: str = "box1.lab", gpus: int = 2, *, mig: bool = False, model: str = "NVIDIA H100 80GB HBM3") -> HostReport:
    reports = []
    for i in range(gpus):
        devices = [MigDevice(index=j, uuid=f"MIG-{name}-{i}-{j}", profile="3g.40gb", memory_total_mib=40192)
                   for j in range(2)] if mig else []
        reports.append(GpuReport(index=i, uuid=f"GPU-{name}-{i}", name=model, memory_total_mib=81559,
                                 driver_version="590.48.01", mig_mode="enabled" if mig else "disabled",
                                 mig_devices=devices))
    return HostReport(hostname=name, cpus=64, memory_mib=512 * 1024, gpus=reports)


def join_token(ctx: Context, org_id: str, *, name: str | None = None, price: float = 1.5) -> str:
    with ctx.db.session() as session:
        return service.create_join_token(session, ctx.settings.section(NodesSettings), organization_id=org_id,
                                         actor="test", node_name=name, site="", price_per_gpu_hour=price,
                                         ttl_s=None).secret


def register_node(ctx: Context, org_id: str, *, name: str, gpus: int = 2, mig: bool = False,
                  price: float = 1.5) -> RegisterResponse:
    token = join_token(ctx, org_id, name=name, price=price)
    with ctx.db.session() as session:
        return agents.register(session, ctx.settings.section(NodesSettings), RegisterRequest(
            join_token=token, host=host(f"{name}.lab", gpus, mig=mig))).response


def place(ctx: Context, org_id: str, node_id: str, key: str, *, label: str = "H100 SXM", count: int = 1,
          priority_org: str | None = None) -> tuple[str, str]:
    """(placement id, state) of a new placement."""
    with ctx.db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        created = placements.create(session, ctx.settings.section(NodesSettings), PlacementRequest(
            organization_id=priority_org or org_id, node=node, gpu_label=label, gpu_count=count, instance_key=key,
            image="localhost/cloudarb-test:1", price_per_hour=1.5))
        return created.placement.id, created.placement.state
