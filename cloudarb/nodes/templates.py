"""The catalog of container templates (image, ports, start command, health check) and who may use them.

The built-in entries are written to ``node_templates`` on first use (insert-if-missing, so an admin's
edits to a row survive); an organization may use a template whose ``organization_ids`` is empty
(everyone) or lists it. A placement may also name a custom image when ``CLOUDARB_NODE_CUSTOM_IMAGES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloudarb.db.models_nodes import Template
from cloudarb.nodes.errors import TemplateNotAllowed, UnknownTemplate

CUSTOM = "custom"

BUILTIN: tuple[dict[str, Any], ...] = (
    {
        "name": "pytorch-jupyter",
        "title": "PyTorch with JupyterLab",
        "image": "docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
        "ports": [{"container_port": 8888, "protocol": "tcp", "name": "jupyter"},
                  {"container_port": 22, "protocol": "tcp", "name": "ssh"}],
        "command": ["sh", "-c", "pip install -q jupyterlab && jupyter lab --ip=0.0.0.0 --port=8888 "
                    "--no-browser --allow-root --ServerApp.token=$JUPYTER_TOKEN --notebook-dir=/workspace"],
        "env": {},
        "health_check": {"kind": "http", "port": 8888, "path": "/api", "interval_s": 10, "timeout_s": 300},
    },
    {
        "name": "vllm-openai",
        "title": "vLLM OpenAI-compatible server",
        "image": "docker.io/vllm/vllm-openai:v0.6.4",
        "ports": [{"container_port": 8000, "protocol": "tcp", "name": "http"}],
        "command": None,
        "env": {"HF_HOME": "/workspace/.cache/huggingface"},
        "health_check": {"kind": "http", "port": 8000, "path": "/health", "interval_s": 10, "timeout_s": 900},
    },
    {
        "name": "cuda-base",
        "title": "CUDA base (sleeps; attach with exec or SSH)",
        "image": "docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
        "ports": [{"container_port": 22, "protocol": "tcp", "name": "ssh"}],
        "command": ["sleep", "infinity"],
        "env": {},
        "health_check": {"kind": "running"},
    },
)


def ensure_catalog(session: Session) -> None:
    """Insert the built-in templates that are missing (idempotent; concurrent callers are harmless)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{**row, "builtin": True, "organization_ids": None} for row in BUILTIN]
    session.execute(insert(Template).values(rows).on_conflict_do_nothing(index_elements=["name"]))


def allowed(template: Template, organization_id: str) -> bool:
    return not template.organization_ids or organization_id in template.organization_ids


def list_templates(session: Session, *, organization_id: str) -> Sequence[Template]:
    ensure_catalog(session)
    rows = session.scalars(select(Template).order_by(Template.name)).all()
    return [t for t in rows if allowed(t, organization_id)]


def resolve(session: Session, *, organization_id: str, name: str | None, image: str | None,
            custom_images: bool) -> tuple[str, Template | None]:
    """(template name, its row) for a placement: a named template the organization may use, or a custom
    image when allowed. Raises ``UnknownTemplate`` / ``TemplateNotAllowed`` naming the field."""
    if name and name != CUSTOM:
        ensure_catalog(session)
        row = session.get(Template, name)
        if row is None:
            known = ", ".join(t.name for t in session.scalars(select(Template).order_by(Template.name)))
            raise UnknownTemplate(f"unknown template {name!r}; known: {known}", field="template")
        if not allowed(row, organization_id):
            raise TemplateNotAllowed(f"template {name!r} is not available to this organization", field="template")
        return name, row
    if not image:
        raise UnknownTemplate("give a template or an image", field="image")
    if not custom_images:
        raise TemplateNotAllowed("custom images are disabled (CLOUDARB_NODE_CUSTOM_IMAGES)", field="image")
    return CUSTOM, None
