"""GPU names as people type them, resolved through the one GPU identity table for the application.

``ingestion.gpu_query`` interprets the words ('a100', 'A100-80GB', 'H100:8', 'h100_sxm'); this module
turns its ``UnknownGpuName`` into the application's ``InvalidInput`` (HTTP 422, a CLI error) naming
the request field and the closest known names, and applies a resolution to requests and filters.
It imports only pydantic-based modules, so the API process may use it.

A count ('H100:8', '8x H100') means GPUs per instance, as in SkyPilot's ``--gpus H100:8``: for an
offer filter it is the instance size, for a workload its ``gpus_per_node``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloudarb.errors import InvalidInput
from ingestion.errors import UnknownGpuName
from ingestion.gpu_query import GpuRequest, resolve_gpu_request
from ingestion.gpu_specs import GPU_MODELS, LEGACY_NAMES
from optimizer.schemas import Workload


class UnknownGpu(InvalidInput):
    """A GPU name the identity table cannot place (``details`` lists the closest known names)."""

    code = "unknown_gpu"


def resolve(text: str, *, field: str) -> GpuRequest:
    """One name -> the models it means; ``UnknownGpu`` (naming ``field`` and suggestions) if unknown."""
    try:
        return resolve_gpu_request(text, field=field)
    except UnknownGpuName as exc:
        raise UnknownGpu(
            str(exc), field=field, details=[{"name": exc.name, "suggestions": list(exc.suggestions)}]
        ) from exc


@dataclass(frozen=True)
class GpuSelection:
    """What several names mean together: the union of their models, and one instance size if stated."""

    models: tuple[str, ...]
    gpus_per_instance: int | None


def select(texts: Sequence[str], *, field: str) -> GpuSelection:
    """The union of the models several names mean (table order); counts must agree with each other."""
    wanted: set[str] = set()
    counts: set[int] = set()
    for i, text in enumerate(texts):
        found = resolve(text, field=f"{field}.{i}" if len(texts) > 1 else field)
        wanted.update(found.models)
        if found.count is not None:
            counts.add(found.count)
    if len(counts) > 1:
        raise InvalidInput(f"{field}: the names give different GPU counts {sorted(counts)}", field=field)
    models = tuple(m for m in GPU_MODELS if m in wanted)
    return GpuSelection(models=models, gpus_per_instance=counts.pop() if counts else None)


def stored_names(models: Sequence[str]) -> list[str]:
    """The names offers may be stored under for these models (today's, and the legacy ones)."""
    names = list(models)
    names.extend(old for old, new in LEGACY_NAMES.items() if new in models)
    return names


def resolve_workload(w: Workload, *, field: str) -> Workload:
    """The workload with canonical ``allowed_gpu_models``; a stated count sets ``gpus_per_node``."""
    if not w.allowed_gpu_models:
        return w
    chosen = select(w.allowed_gpu_models, field=f"{field}.allowed_gpu_models")
    update: dict[str, object] = {"allowed_gpu_models": list(chosen.models)}
    if chosen.gpus_per_instance is not None and w.gpus_per_node == 1:
        update["gpus_per_node"] = chosen.gpus_per_instance
    return w.model_copy(update=update)


def resolve_workloads(workloads: Sequence[Workload]) -> list[Workload]:
    return [resolve_workload(w, field=f"workloads.{i}") for i, w in enumerate(workloads)]
