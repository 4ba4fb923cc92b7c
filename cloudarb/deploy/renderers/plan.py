"""What every renderer reads and returns: a stored solution as plain data, and the files made from it.

Renderers are pure functions ``render(plan, options) -> Rendered``: no database, no clock, no network.
``cloudarb.deploy.export`` builds the ``Plan`` from the stored allocation lines and the optimization's
request (the workloads' kinds and shapes), so tests can render a fixed plan and compare golden files.

Tags follow the deploy stage's (``cloudarb.deploy.keys``) with one deliberate difference: what an
export describes is created by the team's own tool, not by a deployment, so it must never look owned by
this installation. Its mark is ``cloudarb:export`` = ``cloudarb-x-<optimization>-<workload>-l<line>`` (never
the ``cloudarb:key`` tag, and never a ``cloudarb-<install id>-`` prefix, which the reconciler adopts or
destroys: install ids have 4 to 16 characters, ``x`` has one); at most 41 characters, the longest run
name dstack accepts, beside ``cloudarb:optimization``, ``cloudarb:workload`` and, when the export was given a
lifetime, ``cloudarb:expires-at``. Where tag keys cannot hold ``:`` (GCP labels) the same facts use ``-``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import yaml

TAG_EXPORT = "cloudarb:export"
TAG_OPTIMIZATION = "cloudarb:optimization"
TAG_WORKLOAD = "cloudarb:workload"
TAG_EXPIRES = "cloudarb:expires-at"

_SLUG = re.compile(r"[^a-z0-9]+")
DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's safe dumper where PyYAML was built with it (about 6x faster), else the pure-Python one."""


def slug(text: str, *, limit: int = 40) -> str:
    """A DNS-label-safe piece of a name: lowercase letters, digits and single hyphens."""
    cleaned = _SLUG.sub("-", text.lower()).strip("-")
    return (cleaned[:limit].rstrip("-")) or "x"


@dataclass(frozen=True)
class Line:
    """One allocation line of a stored solution (``index`` is its position among the solution's lines)."""

    index: int
    workload_id: str
    offer_key: str
    provider: str
    seller: str
    region: str
    instance_type: str
    gpu_model: str
    instances: int
    gpus: int
    hourly_cost: float
    spot: bool

    @property
    def gpus_per_instance(self) -> int:
        """GPUs on one machine of this line (the line's ``gpus`` counts all its instances)."""
        return max(1, self.gpus // max(1, self.instances))

    @property
    def price_per_instance(self) -> float:
        """The chosen hourly price of one machine: the cap a renderer writes where the tool has one."""
        return round(self.hourly_cost / max(1, self.instances), 6)


@dataclass(frozen=True)
class WorkloadShape:
    """What a renderer needs of a workload besides its lines (from the optimization's request)."""

    id: str
    workload_type: str = "training"
    spot_tolerant: bool = False
    gpus_per_node: int = 1


@dataclass(frozen=True)
class Plan:
    """A stored solution, or the chosen subset of its lines, ready to render."""

    optimization_id: str
    name: str
    lines: tuple[Line, ...]
    workloads: dict[str, WorkloadShape] = field(default_factory=dict)
    expires_at: datetime | None = None

    def workload(self, workload_id: str) -> WorkloadShape:
        return self.workloads.get(workload_id) or WorkloadShape(id=workload_id)

    @property
    def short_id(self) -> str:
        return slug(self.optimization_id, limit=8)

    def key(self, line: Line) -> str:
        """The line's name, also its ``cloudarb:export`` mark; machines of the line append ``-<n>``."""
        return f"cloudarb-x-{self.short_id}-{slug(line.workload_id, limit=16)}-l{line.index}"

    def tags(self, line: Line) -> dict[str, str]:
        tags = {TAG_EXPORT: self.key(line), TAG_OPTIMIZATION: self.optimization_id, TAG_WORKLOAD: line.workload_id}
        if self.expires_at is not None:
            tags[TAG_EXPIRES] = self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return tags

    def labels(self, line: Line) -> dict[str, str]:
        """The tags as label-safe keys and values (GCP labels: lowercase, digits, ``_`` and ``-``)."""
        out = {}
        for key, value in self.tags(line).items():
            safe = value.lower().replace(":", "-")
            out[key.replace(":", "-")] = _SLUG.sub("-", safe).strip("-")[:63]
        return out


@dataclass(frozen=True)
class RenderedFile:
    path: str
    content: str
    media_type: str = "text/plain"


@dataclass(frozen=True)
class Skipped:
    """A line the format cannot express (a provider without a Terraform provider): listed, never dropped."""

    line: int
    workload_id: str
    provider: str
    reason: str


@dataclass(frozen=True)
class Rendered:
    format: str
    files: tuple[RenderedFile, ...]
    skipped: tuple[Skipped, ...] = ()

    def file(self, path: str) -> RenderedFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)
