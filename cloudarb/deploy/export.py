"""Exporting a stored solution: load its lines (all or a chosen subset) and render them in one format.

Shared by ``GET /optimize/{id}/export``, ``cloudarb export`` and the Kubernetes apply job. The plan is
read inside the caller's session and scoped to the caller's organization (another organization's
optimization is 'not found'). Lines are numbered by their position in the stored solution, the same
numbers ``GET /optimize/{id}/allocations`` lists them in.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from cloudarb.deploy.renderers import (
    KubernetesOptions,
    Line,
    Plan,
    Rendered,
    WorkloadShape,
    check_format,
    render,
)
from cloudarb.errors import Conflict, InvalidInput, NotFound
from cloudarb.optimize import store as opt_store

ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed member dates: the same plan gives the same archive bytes


class ExportedFile(BaseModel):
    path: str = Field(description="Relative path of the file inside the export.")
    media_type: str
    content: str


class SkippedLine(BaseModel):
    line: int = Field(description="The line's number in the solution.")
    workload_id: str
    provider: str
    reason: str


class ExportOut(BaseModel):
    """An export as a listing of files; lines the format cannot express are listed, never dropped."""

    optimization_id: str
    format: str
    files: list[ExportedFile]
    skipped: list[SkippedLine]


def to_out(optimization_id: str, rendered: Rendered) -> ExportOut:
    return ExportOut(
        optimization_id=optimization_id,
        format=rendered.format,
        files=[ExportedFile(path=f.path, media_type=f.media_type, content=f.content) for f in rendered.files],
        skipped=[SkippedLine(line=s.line, workload_id=s.workload_id, provider=s.provider, reason=s.reason)
                 for s in rendered.skipped],
    )


def parse_lines(text: str | None) -> list[int] | None:
    """'0,2,5' -> [0, 2, 5]; empty or None -> all lines. A bad item is a 4xx naming ``lines``."""
    if text is None or not text.strip():
        return None
    out: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit():
            raise InvalidInput(f"lines must be comma-separated line numbers (0, 1, ...); got {item!r}", field="lines")
        out.append(int(item))
    return out


def _workloads(request: dict[str, Any]) -> dict[str, WorkloadShape]:
    shapes = {}
    for w in request.get("workloads") or []:
        if isinstance(w, dict) and "id" in w:
            shapes[str(w["id"])] = WorkloadShape(
                id=str(w["id"]),
                workload_type=str(w.get("workload_type") or "training"),
                spot_tolerant=bool(w.get("spot_tolerant", False)),
                gpus_per_node=int(w.get("gpus_per_node") or 1),
            )
    return shapes


def load_plan(
    session: Session,
    *,
    organization_id: str,
    optimization_id: str,
    lines: Sequence[int] | None = None,
    expires_at: datetime | None = None,
) -> Plan:
    opt = opt_store.get(session, organization_id=organization_id, optimization_id=optimization_id)
    if opt is None:
        raise NotFound(f"optimization {optimization_id} not found")
    if opt.status != "finished":
        raise Conflict(f"optimization {optimization_id} is '{opt.status}': only a finished solution can be exported")
    rows = opt_store.allocations(session, optimization_id=optimization_id)
    all_lines = [
        Line(index=i, workload_id=r.workload_id, offer_key=r.offer_key, provider=r.provider, seller=r.seller,
             region=r.region, instance_type=r.instance_type, gpu_model=r.gpu_model, instances=r.instances,
             gpus=r.gpus, hourly_cost=r.hourly_cost, spot=r.spot)
        for i, r in enumerate(rows)
    ]
    if lines is not None:
        wrong = sorted({i for i in lines if i >= len(all_lines)})
        if wrong:
            raise InvalidInput(f"lines {wrong} do not exist: the solution has {len(all_lines)} line(s), "
                               f"numbered 0 to {len(all_lines) - 1}", field="lines")
        chosen = sorted(set(lines))
        all_lines = [all_lines[i] for i in chosen]
    return Plan(optimization_id=opt.id, name=opt.name, lines=tuple(all_lines), workloads=_workloads(opt.request),
                expires_at=expires_at)


def export(
    session: Session,
    *,
    organization_id: str,
    optimization_id: str,
    fmt: str,
    lines: Sequence[int] | None = None,
    expires_at: datetime | None = None,
    kubernetes_options: KubernetesOptions | None = None,
) -> Rendered:
    check_format(fmt)  # an unknown format fails before the database is read
    plan = load_plan(session, organization_id=organization_id, optimization_id=optimization_id, lines=lines,
                     expires_at=expires_at)
    return render(plan, fmt, kubernetes_options=kubernetes_options)


def to_zip(rendered: Rendered) -> bytes:
    """The files as one zip archive, in a folder named after the format."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for f in rendered.files:
            info = zipfile.ZipInfo(f"{rendered.format}/{f.path}", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, f.content)
    return buf.getvalue()
