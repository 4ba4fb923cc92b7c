"""Renderers: a stored solution as Terraform JSON, Kubernetes manifests, SkyPilot and dstack files, CSV.

Pure functions from a ``Plan`` (``plan.py``) to ``Rendered`` files, listed in one explicit registry; an
unknown format's error names the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable

from cloudarb.deploy.renderers import csv_lines, dstack, kubernetes, skypilot, terraform
from cloudarb.deploy.renderers.kubernetes import KubernetesOptions
from cloudarb.deploy.renderers.plan import Line, Plan, Rendered, RenderedFile, Skipped, WorkloadShape
from cloudarb.errors import InvalidInput

__all__ = ["FORMATS", "KubernetesOptions", "Line", "Plan", "Rendered", "RenderedFile", "Skipped", "WorkloadShape",
           "check_format", "render"]

FORMATS: dict[str, Callable[[Plan], Rendered]] = {
    "terraform": terraform.render,
    "kubernetes": kubernetes.render,
    "skypilot": skypilot.render,
    "dstack": dstack.render,
    "csv": csv_lines.render,
}


def check_format(fmt: str) -> Callable[[Plan], Rendered]:
    """The renderer of ``fmt``; an unknown format is an ``InvalidInput`` on the field ``format``."""
    try:
        return FORMATS[fmt]
    except KeyError:
        raise InvalidInput(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}",
                           field="format") from None


def render(plan: Plan, fmt: str, *, kubernetes_options: KubernetesOptions | None = None) -> Rendered:
    renderer = check_format(fmt)
    if fmt == "kubernetes":
        return kubernetes.render(plan, kubernetes_options)
    return renderer(plan)
