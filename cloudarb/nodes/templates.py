"""Container templates (image, ports, start command, environment, health check) and who may use them.

Two kinds of template:
- the catalog (``organization_id`` None): the built-in entries, written on first use (insert-if-missing,
  so a catalog row changed in the database survives), read-only through the API; a catalog template
  whose ``organization_ids`` is set is seen only by those organizations;
- an organization's own, made by its admins: seen, used, changed and deleted by that organization only.
  Names are unique per owner, so another organization may use the same name without learning of it;
  an own template hides a catalog one of the same name (a later catalog entry never changes what an
  organization already uses).

An organization's policy narrows what it may use: an allow-list of template names (None = all it
sees) and whether its placements may name a custom image (None = the server's
``CLOUDARB_NODE_CUSTOM_IMAGES``; an organization can only narrow the server's setting, never widen it).
An organization's own template is a custom image chosen by its admin, so making or changing one needs
the server to allow custom images.

Health checks are run by the node's agent (``cloudarb.agent.health``): ``running`` (the engine says the
container runs), ``tcp`` (the published port accepts a connection) or ``http`` (a GET on the published
port answers 2xx/3xx); ``timeout_s`` is the start-up grace, ``failures`` failed probes in a row after a
pass make the placement ``unhealthy``, and ``restart_on_unhealthy`` (default off) has the agent restart it.
A placement made from a custom image is checked with ``running``.

Placements copy the template's image, command, environment, ports and health check when they are made, so
editing or deleting a template never changes a container that exists; a template that live placements were made
from cannot be deleted (their deployments name it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloudarb.agent.protocol import GPU_ENV, HealthCheckSpec
from cloudarb.db.models_nodes import LIVE_PLACEMENT_STATES, Placement, Template, TemplatePolicy
from cloudarb.db.types import new_id, utcnow
from cloudarb.errors import InvalidInput
from cloudarb.nodes.errors import (
    TemplateExists,
    TemplateInUse,
    TemplateNotAllowed,
    TemplateNotFound,
    TemplateReadOnly,
    UnknownTemplate,
)

CUSTOM = "custom"
RESERVED_NAMES = frozenset({CUSTOM, "policy"})
"""Not template names: ``custom`` is a placement's own image, ``policy`` is the allow-list's route."""
RESERVED_ENV = ("CLOUDARB_", "JUPYTER_TOKEN", "CUDA_VISIBLE_DEVICES", *GPU_ENV)
"""Set by CloudArb (credentials) or by the GPU pinning itself: a template that set them could expose
GPUs the container was not given, or replace its generated password."""
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
IMAGE_PATTERN = (r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
                 r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

TemplateName = Annotated[str, Field(pattern=NAME_PATTERN, description="Lowercase letters, digits, '.', '_', '-'.")]


class PortIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    container_port: int = Field(ge=1, le=65535, description="The port inside the container.")
    protocol: Literal["tcp", "udp"] = "tcp"
    name: str = Field(default="", max_length=40, pattern=r"^[a-z0-9_-]*$", description="ssh, jupyter, http...")


class RunningCheck(BaseModel):
    """Healthy while the container runs."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["running"] = "running"


class _ProbedCheck(BaseModel):
    """What the agent does with a probed check: see ``cloudarb.agent.protocol.HealthCheckSpec``."""

    model_config = ConfigDict(extra="forbid")
    port: int = Field(ge=1, le=65535, description="One of the template's ports.")
    interval_s: float = Field(default=10.0, ge=1, le=3600, description="Seconds between probes.")
    timeout_s: float = Field(default=300.0, ge=1, le=86400, description=(
        "The start-up grace: how long it may take to become healthy (failures before the first pass are "
        "expected until then; a container never healthy by then is unhealthy)."))
    probe_timeout_s: float = Field(default=5.0, ge=0.5, le=300, description="How long one probe may take.")
    failures: int = Field(default=3, ge=1, le=100, description="Failed probes in a row, after a pass, that "
                          "make the container unhealthy.")
    restart_on_unhealthy: bool = Field(default=False, description=(
        "Restart the container when it becomes unhealthy (its GPUs and workspace stay; the grace starts "
        "over). Off by default: the placement is reported unhealthy and left as it is for its owner."))


class HttpCheck(_ProbedCheck):
    """Healthy once ``GET http://<host>:<published port><path>`` answers 2xx or 3xx."""

    kind: Literal["http"]
    path: str = Field(default="/", max_length=300, pattern=r"^/[^\s]*$")


class TcpCheck(_ProbedCheck):
    """Healthy once the published port accepts a connection."""

    kind: Literal["tcp"]


HealthCheck = Annotated[RunningCheck | HttpCheck | TcpCheck, Field(discriminator="kind")]


def wire_check(stored: dict[str, Any] | None) -> HealthCheckSpec | None:
    """A placement's stored check (a template's ``health_check``) as the agent's wire model; None for
    none, or for a stored shape that no longer validates (the container is then simply not checked)."""
    if not stored:
        return None
    try:
        data = {k: v for k, v in stored.items() if k != "timeout_s"}
        if "timeout_s" in stored:
            data["grace_s"] = stored["timeout_s"]
        return HealthCheckSpec.model_validate(data)
    except ValidationError:
        return None


class TemplateFields(BaseModel):
    """Everything of a template but its name (a full replacement in PUT)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, max_length=300, pattern=IMAGE_PATTERN,
                       description="An image reference: [registry/]name[:tag][@sha256:digest].")
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    ports: list[PortIn] = Field(default_factory=list, max_length=20, description="Ports to publish.")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, min_length=1, max_length=64, description="Start command (None: the image's own).")
    env: dict[str, Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict, max_length=64)
    health_check: HealthCheck = Field(default_factory=RunningCheck)

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not a variable name (letters, digits, '_'; not starting with a digit)")
            if key.startswith(RESERVED_ENV):
                raise ValueError(f"{key} is set by CloudArb (credentials, GPU pinning); a template cannot set it")
        return env

    @field_validator("ports")
    @classmethod
    def _ports_once(cls, ports: list[PortIn]) -> list[PortIn]:
        seen: set[tuple[int, str]] = set()
        for p in ports:
            if (p.container_port, p.protocol) in seen:
                raise ValueError(f"{p.container_port}/{p.protocol} is listed twice")
            seen.add((p.container_port, p.protocol))
        return ports

    @field_validator("health_check")
    @classmethod
    def _checks_a_port(cls, check: RunningCheck | HttpCheck | TcpCheck, info: ValidationInfo) -> Any:
        ports = info.data.get("ports")
        if isinstance(check, HttpCheck | TcpCheck) and ports is not None and not any(
                p.container_port == check.port and p.protocol == "tcp" for p in ports):
            raise ValueError(f"port {check.port} is not one of the template's tcp ports")
        return check


class TemplateCreate(TemplateFields):
    name: TemplateName


class TemplatePatch(BaseModel):
    """The fields to change; the result is checked as a whole (a health check must name a kept port)."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(default=None, max_length=300, pattern=IMAGE_PATTERN)
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    ports: list[PortIn] | None = Field(default=None, max_length=20)
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(default=None, max_length=64)
    env: dict[str, Annotated[str, Field(max_length=4096)]] | None = Field(default=None, max_length=64)
    health_check: HealthCheck | None = None


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
    now = utcnow()
    rows = [{**row, "id": new_id(), "scope": "", "organization_id": None, "builtin": True, "organization_ids": None,
             "description": "", "created_by": "", "created_at": now, "updated_at": now} for row in BUILTIN]
    session.execute(insert(Template).values(rows).on_conflict_do_nothing(index_elements=["scope", "name"]))


def _catalog_visible(template: Template, organization_id: str) -> bool:
    return not template.organization_ids or organization_id in template.organization_ids


def visible(session: Session, *, organization_id: str) -> list[Template]:
    """The templates an organization sees (its own, then the catalog's it may see), by name; an own
    template hides a catalog one of the same name."""
    ensure_catalog(session)
    own = session.scalars(select(Template).where(Template.scope == organization_id)).all()
    names = {t.name for t in own}
    catalog = [t for t in session.scalars(select(Template).where(Template.scope == ""))
               if _catalog_visible(t, organization_id) and t.name not in names]
    return sorted([*own, *catalog], key=lambda t: t.name)


def find(session: Session, *, organization_id: str, name: str) -> Template | None:
    ensure_catalog(session)
    own = session.scalars(select(Template).where(Template.scope == organization_id, Template.name == name)).first()
    if own is not None:
        return own
    row = session.scalars(select(Template).where(Template.scope == "", Template.name == name)).first()
    return row if row is not None and _catalog_visible(row, organization_id) else None


def get(session: Session, *, organization_id: str, name: str) -> Template:
    row = find(session, organization_id=organization_id, name=name)
    if row is None:
        raise TemplateNotFound(f"template {name!r} not found")
    return row


def policy(session: Session, organization_id: str) -> TemplatePolicy | None:
    return session.get(TemplatePolicy, organization_id)


def allowed(template: Template, organization_id: str, rules: TemplatePolicy | None = None) -> bool:
    """Whether the organization may place this template (it sees it, and its allow-list lets it)."""
    if template.organization_id is not None:
        if template.organization_id != organization_id:
            return False
    elif not _catalog_visible(template, organization_id):
        return False
    return rules is None or rules.allowed_templates is None or template.name in rules.allowed_templates


def custom_images_allowed(rules: TemplatePolicy | None, *, server: bool) -> bool:
    return server and (rules is None or rules.custom_images is None or rules.custom_images)


def describe(row: Template, organization_id: str, rules: TemplatePolicy | None) -> dict[str, Any]:
    """A template as the API and the CLI show it."""
    return {
        "name": row.name, "title": row.title, "description": row.description, "image": row.image,
        "ports": row.ports, "command": row.command, "env": row.env, "health_check": row.health_check,
        "builtin": row.builtin, "owner": "catalog" if row.organization_id is None else "organization",
        "allowed": allowed(row, organization_id, rules), "created_by": row.created_by,
        "created_at": row.created_at, "updated_at": row.updated_at,
    }


def list_templates(session: Session, *, organization_id: str) -> Sequence[Template]:
    """The templates the organization may use (visible and allowed by its policy)."""
    rules = policy(session, organization_id)
    return [t for t in visible(session, organization_id=organization_id) if allowed(t, organization_id, rules)]


def _own(session: Session, organization_id: str, name: str) -> Template:
    row = get(session, organization_id=organization_id, name=name)
    if row.organization_id is None:
        raise TemplateReadOnly(f"template {name!r} is part of the catalog{' (built in)' if row.builtin else ''} and "
                               "cannot be changed or deleted: create your own under another name (POST /templates)",
                               field="name")
    return row


def _require_custom_images(server_custom_images: bool) -> None:
    if not server_custom_images:
        raise TemplateNotAllowed("this server does not allow custom images (CLOUDARB_NODE_CUSTOM_IMAGES), so "
                                 "organizations cannot add or change their own templates", field="image")


def _apply(row: Template, fields: TemplateFields) -> None:
    data = fields.model_dump(mode="json")
    row.image, row.title, row.description = data["image"], data["title"], data["description"]
    row.ports, row.command, row.env, row.health_check = data["ports"], data["command"], data["env"], data["health_check"]
    row.updated_at = utcnow()


def create(session: Session, *, organization_id: str, actor: str, body: TemplateCreate,
           server_custom_images: bool) -> Template:
    _require_custom_images(server_custom_images)
    if body.name in RESERVED_NAMES:
        raise TemplateExists(f"{body.name!r} is a reserved word, not a template name", field="name")
    existing = find(session, organization_id=organization_id, name=body.name)
    if existing is not None:
        whose = "your organization's" if existing.organization_id else "a catalog template's"
        raise TemplateExists(f"{body.name!r} is already {whose} name: choose another (or PUT to change yours)",
                             field="name")
    row = Template(id=new_id(), scope=organization_id, organization_id=organization_id, name=body.name,
                   organization_ids=None, builtin=False, created_by=actor, created_at=utcnow(), image="")
    _apply(row, body)
    session.add(row)
    session.flush()
    return row


def replace(session: Session, *, organization_id: str, name: str, body: TemplateFields,
            server_custom_images: bool) -> Template:
    row = _own(session, organization_id, name)
    _require_custom_images(server_custom_images)
    _apply(row, body)
    session.flush()
    return row


def patch(session: Session, *, organization_id: str, name: str, body: TemplatePatch,
          server_custom_images: bool) -> Template:
    row = _own(session, organization_id, name)
    _require_custom_images(server_custom_images)
    current = {"image": row.image, "title": row.title, "description": row.description, "ports": row.ports,
               "command": row.command, "env": row.env, "health_check": row.health_check or {"kind": "running"}}
    merged = {**current, **body.model_dump(mode="json", exclude_unset=True)}
    try:
        fields = TemplateFields.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from exc
    _apply(row, fields)
    session.flush()
    return row


def delete(session: Session, *, organization_id: str, name: str) -> None:
    row = _own(session, organization_id, name)
    live = session.scalar(select(func.count()).select_from(Placement).where(
        Placement.organization_id == organization_id, Placement.template == name,
        Placement.state.in_((*LIVE_PLACEMENT_STATES, "queued")))) or 0
    if live:
        raise TemplateInUse(f"template {name!r} is used by {live} live placement(s): destroy them first", field="name")
    rules = policy(session, organization_id)
    if rules is not None and rules.allowed_templates and name in rules.allowed_templates:
        rules.allowed_templates = [n for n in rules.allowed_templates if n != name]
    session.delete(row)
    session.flush()


@dataclass(frozen=True)
class PolicyView:
    allowed_templates: list[str] | None
    custom_images: bool | None
    custom_images_effective: bool
    server_custom_images: bool
    updated_by: str
    updated_at: Any


def view_policy(session: Session, *, organization_id: str, server_custom_images: bool) -> PolicyView:
    rules = policy(session, organization_id)
    return PolicyView(
        allowed_templates=list(rules.allowed_templates) if rules and rules.allowed_templates is not None else None,
        custom_images=rules.custom_images if rules else None,
        custom_images_effective=custom_images_allowed(rules, server=server_custom_images),
        server_custom_images=server_custom_images, updated_by=rules.updated_by if rules else "",
        updated_at=rules.updated_at if rules else None)


def set_policy(session: Session, *, organization_id: str, actor: str, allowed_templates: list[str] | None,
               custom_images: bool | None, server_custom_images: bool) -> PolicyView:
    """Replace the organization's policy; every listed name must be a template it sees (the field of the
    first unknown one is named), and custom images can be turned on only where the server allows them."""
    if allowed_templates is not None:
        known = {t.name for t in visible(session, organization_id=organization_id)}
        for i, name in enumerate(allowed_templates):
            if name not in known:
                raise UnknownTemplate(f"allowed_templates[{i}]: no template {name!r} (see GET /templates)",
                                      field=f"allowed_templates[{i}]")
        allowed_templates = sorted(set(allowed_templates))
    if custom_images and not server_custom_images:
        raise TemplateNotAllowed("custom_images: this server does not allow custom images "
                                 "(CLOUDARB_NODE_CUSTOM_IMAGES); an organization can only narrow it", field="custom_images")
    rules = policy(session, organization_id)
    if rules is None:
        rules = TemplatePolicy(organization_id=organization_id)
        session.add(rules)
    rules.allowed_templates, rules.custom_images = allowed_templates, custom_images
    rules.updated_by, rules.updated_at = actor, utcnow()
    session.flush()
    return view_policy(session, organization_id=organization_id, server_custom_images=server_custom_images)


def resolve(session: Session, *, organization_id: str, name: str | None, image: str | None,
            custom_images: bool) -> tuple[str, Template | None]:
    """(template name, its row) for a placement: a named template the organization may use, or a custom
    image when the server (``custom_images``) and the organization's policy allow one. Raises
    ``UnknownTemplate`` / ``TemplateNotAllowed`` naming the field; an unknown name lists only the
    templates this organization sees."""
    rules = policy(session, organization_id)
    if name and name != CUSTOM:
        row = find(session, organization_id=organization_id, name=name)
        if row is None:
            known = ", ".join(t.name for t in list_templates(session, organization_id=organization_id))
            raise UnknownTemplate(f"unknown template {name!r}; known: {known or 'none'}", field="template")
        if not allowed(row, organization_id, rules):
            raise TemplateNotAllowed(f"template {name!r} is not on this organization's allow-list "
                                     "(GET /templates/policy)", field="template")
        return name, row
    if not image:
        raise UnknownTemplate("give a template or an image", field="image")
    if not custom_images:
        raise TemplateNotAllowed("custom images are disabled (CLOUDARB_NODE_CUSTOM_IMAGES)", field="image")
    if not custom_images_allowed(rules, server=True):
        raise TemplateNotAllowed("this organization's policy allows templates only, not custom images "
                                 "(GET /templates/policy)", field="image")
    return CUSTOM, None
