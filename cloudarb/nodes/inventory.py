"""A node's GPUs as the agent reports them, and the allocatable *units* they form.

A unit is a whole GPU whose MIG mode is not enabled, or one MIG device of a MIG-enabled GPU (a GPU
split into MIG devices cannot also be handed out whole). Every unit has a *label* that placements and
offers name: the canonical model from the GPU identity table (``H100 SXM``), or for a MIG device the
model and profile (``H100 SXM MIG 3g.40gb``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.agent.protocol import GpuReport
from cloudarb.db.models_nodes import GpuAssignment, NodeGpu
from ingestion.gpus import resolve_gpu

MIG_SLICES = 7
"""Compute slices of an A100/H100/H200 (a ``3g.40gb`` device holds 3 of 7)."""
_PROFILE = re.compile(r"^(\d+)g\.")


@dataclass(frozen=True)
class Unit:
    uuid: str
    index: int
    label: str
    model: str
    memory_mib: int
    share: float
    """Fraction of its GPU (1.0 for a whole GPU; slices/7 for a MIG device), for the unit's price."""
    parent_index: int


def mig_label(model: str, profile: str) -> str:
    return f"{model} MIG {profile}" if profile else f"{model} MIG"


def mig_share(profile: str) -> float:
    match = _PROFILE.match(profile)
    return min(1.0, int(match.group(1)) / MIG_SLICES) if match else 1.0 / MIG_SLICES


def sync_gpus(session: Session, node_id: str, reports: Sequence[GpuReport]) -> None:
    """Bring the node's GPU rows in line with a report: new ones added, changed ones updated, ones no
    longer reported kept but marked absent (a placement may still name them)."""
    rows = {g.uuid: g for g in session.scalars(select(NodeGpu).where(NodeGpu.node_id == node_id))}
    seen: set[str] = set()
    for gpu in reports:
        match = resolve_gpu(gpu.model or gpu.name, vram_gb=gpu.memory_total_mib / 1024 if gpu.memory_total_mib else None)
        mig = gpu.mig_mode == "enabled"
        detail = gpu.model_dump(mode="json", exclude={"mig_devices"})
        _upsert(session, rows, node_id, uuid=gpu.uuid, index=gpu.index, parent=None, profile="", name=gpu.name,
                model=match.model, known=match.known, memory=gpu.memory_total_mib, mig=mig, detail=detail)
        seen.add(gpu.uuid)
        for dev in gpu.mig_devices if mig else ():
            _upsert(session, rows, node_id, uuid=dev.uuid, index=dev.index, parent=gpu.uuid, profile=dev.profile,
                    name=f"{gpu.name} MIG {dev.profile}".strip(), model=match.model, known=match.known,
                    memory=dev.memory_total_mib or 0, mig=False, detail=dev.model_dump(mode="json"))
            seen.add(dev.uuid)
    for uuid, row in rows.items():
        if uuid not in seen and row.present:
            row.present = False


def _upsert(session: Session, rows: dict[str, NodeGpu], node_id: str, *, uuid: str, index: int, parent: str | None,
            profile: str, name: str, model: str, known: bool, memory: int, mig: bool, detail: dict[str, object]) -> None:
    row = rows.get(uuid)
    if row is None:
        row = NodeGpu(node_id=node_id, uuid=uuid)
        session.add(row)
        rows[uuid] = row
    row.index, row.parent_uuid, row.mig_profile, row.name = index, parent, profile, name
    row.model, row.model_known, row.memory_total_mib, row.mig_enabled = model, known, memory, mig
    row.present, row.detail = True, dict(detail)


def units(session: Session, node_id: str) -> list[Unit]:
    """The node's present allocatable units, by GPU index then MIG index."""
    gpus = session.scalars(select(NodeGpu).where(NodeGpu.node_id == node_id, NodeGpu.present.is_(True))).all()
    parents = {g.uuid: g for g in gpus if g.parent_uuid is None}
    out: list[Unit] = []
    for g in gpus:
        if g.parent_uuid is None:
            if not g.mig_enabled:
                out.append(Unit(g.uuid, g.index, g.model, g.model, g.memory_total_mib, 1.0, g.index))
        else:
            parent = parents.get(g.parent_uuid)
            if parent is not None and parent.mig_enabled:
                out.append(Unit(g.uuid, g.index, mig_label(g.model, g.mig_profile), g.model, g.memory_total_mib,
                                mig_share(g.mig_profile), parent.index))
    return sorted(out, key=lambda u: (u.parent_index, u.label != u.model, u.index))


def held(session: Session, node_id: str) -> dict[str, str]:
    """Unit UUID -> the placement holding it."""
    rows = session.execute(select(GpuAssignment.gpu_uuid, GpuAssignment.placement_id)
                           .where(GpuAssignment.node_id == node_id))
    return {uuid: placement for uuid, placement in rows}


def free_units(session: Session, node_id: str) -> list[Unit]:
    taken = held(session, node_id)
    return [u for u in units(session, node_id) if u.uuid not in taken]
