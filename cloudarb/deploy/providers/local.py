"""Provider ``local``: the team's own GPU hosts, provisioned as placements of ``cloudarb.nodes``.

The deploy core drives these like any provider, so local containers get the same intent rows, verified
destroy, reconciliation and per-second metering (at the owner's price, 1-minute minimum). The offer
the optimizer chose names the node and the unit label in its instance type (``<node>/<label>``, or
``<node>/<label>/x<n>`` for an instance of n GPUs, see ``cloudarb.nodes.market``), and a sized offer
places exactly n GPUs; ``create`` records a placement under the instance key, which starts at
once on free GPUs or waits in the node's queue (reported ``pending``). The agent's reports are the
provider's truth: ``get`` answers None only once the agent reported the container destroyed (or the
placement ended before any container existed: canceled in the queue, or its start failed and was
rolled back by the agent).

There is no remote API: the provisioner reads and writes the control plane's database (``base_url``
is that database's URL when given, else the configured one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloudarb.config import NodesSettings, get_settings
from cloudarb.db.engine import Database
from cloudarb.db.models_nodes import Node, Placement
from cloudarb.deploy.errors import InvalidLaunch, NoCapacity, OfferGone, ProviderUnavailable
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    RemoteInstance,
    RemoteState,
)
from cloudarb.errors import CloudArbError
from cloudarb.nodes import placements, templates
from cloudarb.nodes.errors import NoSuchGpu
from cloudarb.nodes.market import parse_sized
from cloudarb.nodes.placements import PlacementRequest

CAPABILITIES = Capabilities(
    spot=False, stop_start=True, mark="label", idempotency_token=True, list_filter=True,
    billing_granularity_s=1, billing_minimum_s=60, requests_per_s=50.0, burst=20, listing_lag_s=1.0,
    max_key_length=200, provider_ttl=False, reports_rate=False, billing_starts="running", queues=True,
)
"""Placements are keyed by the instance key (creating twice returns the first), listed by key prefix
in the database, billed per second with a one-minute minimum from when the container runs (a queued
placement costs nothing), queued without a boot timeout (issue 14)."""

STATES: dict[str, RemoteState] = {
    "queued": RemoteState.PENDING, "assigned": RemoteState.PENDING, "starting": RemoteState.PENDING,
    "running": RemoteState.RUNNING, "stopped": RemoteState.STOPPED, "destroying": RemoteState.TERMINATING,
}
DEFAULT_TEMPLATE = "cuda-base"
TAG_ORGANIZATION = "cloudarb-organization"
TAG_USER = "cloudarb-user"


class LocalProvisioner:
    key = "local"
    capabilities = CAPABILITIES

    def __init__(self, db: Database, settings: NodesSettings, *, custom_images: bool | None = None) -> None:
        self.db = db
        self.settings = settings
        self.custom_images = settings.node_custom_images if custom_images is None else custom_images

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self.db.session() as session:
                yield session
        except SQLAlchemyError as exc:
            raise ProviderUnavailable(f"control-plane database: {exc.__class__.__name__}", provider="local") from exc

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        node_name, label, size = parse_sized(spec.instance_type)
        if size is not None and spec.gpu_count not in (0, size):
            raise InvalidLaunch(f"instance type {spec.instance_type!r} is {size} GPU(s), gpu_count {spec.gpu_count} "
                                "asked", provider="local")
        with self._session() as session:
            node = session.scalars(select(Node).where(Node.name == (node_name or spec.region))).first()
            if node is None:
                raise OfferGone(f"no node named {node_name or spec.region!r} (removed?)", provider="local")
            existing = session.scalars(select(Placement).where(Placement.instance_key == spec.key)).first()
            if existing is None and (node.status != "healthy" or node.drained):
                raise NoCapacity(f"node {node.name} is {'drained' if node.drained else node.status}", provider="local")
            org = spec.tags.get(TAG_ORGANIZATION) or node.organization_id
            image = spec.image or DEFAULT_TEMPLATE
            try:
                name, template = templates.resolve(
                    session, organization_id=org, name=image if "/" not in image and ":" not in image else None,
                    image=image, custom_images=self.custom_images)
                ports = ([dict(p) for p in template.ports] if template is not None else [])
                ports += [{"container_port": p, "protocol": "tcp", "name": ""} for p in spec.ports
                          if all(q["container_port"] != p for q in ports)]
                created = placements.create(session, self.settings, PlacementRequest(
                    organization_id=org, node=node, gpu_label=label or spec.gpu_model, gpu_count=size or max(1, spec.gpu_count),
                    instance_key=spec.key, deployment_id=spec.tags.get("cloudarb-deployment") or None,
                    image=template.image if template is not None else image, template=name,
                    command=template.command if template is not None else None,
                    env={**(template.env if template is not None else {}), **spec.env}, ports=ports,
                    price_per_hour=spec.price_per_hour, expires_at=spec.expires_at,
                    created_by=spec.tags.get(TAG_USER, ""), workspace_owner=spec.tags.get(TAG_USER, "")))
            except NoSuchGpu as exc:
                raise NoCapacity(exc.message, provider="local") from exc
            except CloudArbError as exc:
                raise InvalidLaunch(exc.message, provider="local") from exc
            return self._remote(session, created.placement)

    def find(self, key: str) -> RemoteInstance | None:
        with self._session() as session:
            p = session.scalars(select(Placement).where(Placement.instance_key == key)).first()
            return self._remote(session, p) if p is not None and p.state in STATES else None

    def get(self, provider_id: str) -> RemoteInstance | None:
        with self._session() as session:
            p = session.get(Placement, provider_id)
            return self._remote(session, p) if p is not None and p.state in STATES else None

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        with self._session() as session:
            rows = session.scalars(select(Placement).where(
                Placement.instance_key.startswith(prefix, autoescape=True), Placement.state.in_(list(STATES)))
                .order_by(Placement.queued_at)).all()
            return [self._remote(session, p) for p in rows]

    def destroy(self, provider_id: str) -> None:
        self._act(provider_id, lambda s, p: placements.request_destroy(s, self.settings, p))

    def stop(self, provider_id: str) -> None:
        """Stop the container; its GPUs go back to the node (the queue may take them) when it has stopped.
        A stop while a start still waits for GPUs cancels that start."""
        def stop(session: Session, p: Placement) -> None:
            if placements.restarting(p):
                placements.cancel(session, self.settings, p)
            elif p.state != "stopped":
                placements.request_stop(session, p)
        self._act(provider_id, stop)

    def start(self, provider_id: str) -> None:
        """Start a stopped placement: it takes GPUs again (its own if free, else others of its model, else
        it waits in the queue: reported pending with a position)."""
        self._act(provider_id, lambda s, p: None if p.state in ("running", "starting", "assigned", "queued")
                  else placements.request_start(s, self.settings, p))

    def _act(self, provider_id: str, action: Callable[[Session, Placement], None]) -> None:
        with self._session() as session:
            p = session.get(Placement, provider_id)
            if p is None:
                return
            try:
                action(session, p)
            except CloudArbError as exc:
                raise InvalidLaunch(exc.message, provider="local") from exc

    @staticmethod
    def _remote(session: Session, p: Placement) -> RemoteInstance:
        node = session.get(Node, p.node_id)
        ssh = p.published_ports.get("22/tcp")
        return RemoteInstance(
            provider_id=p.id, key=p.instance_key, state=STATES.get(p.state, RemoteState.TERMINATED), raw_state=p.state,
            address=node.hostname if node is not None and ssh else None, ssh_port=int(ssh) if ssh else None,
            hourly_rate=p.price_per_hour, created_at=p.queued_at, queue_position=_position(session, p),
        )


def _position(session: Session, p: Placement) -> int | None:
    """1 + the placements the node starts before this one (its queue order); None unless it is queued."""
    if p.state != "queued":
        return None
    ahead = session.scalar(select(func.count()).select_from(Placement).where(
        Placement.node_id == p.node_id, Placement.state == "queued", Placement.id != p.id,
        or_(Placement.priority > p.priority, and_(Placement.priority == p.priority, or_(
            Placement.queued_at < p.queued_at, and_(Placement.queued_at == p.queued_at, Placement.id < p.id))))))
    return 1 + int(ahead or 0)


_DATABASES: dict[str, Database] = {}
_LOCK = threading.Lock()


def _database(url: str) -> Database:
    """One engine per database URL and process: deploy jobs build provisioners per job, and an engine
    each would leave a connection pool behind every time."""
    with _LOCK:
        db = _DATABASES.get(url)
        if db is None:
            db = _DATABASES[url] = Database(url)
        return db


def provisioner(config: ProviderConfig) -> LocalProvisioner:
    """The registry's factory: ``config.base_url`` is the control plane's database URL when given."""
    settings = get_settings()
    return LocalProvisioner(_database(config.base_url or settings.database_url), settings.section(NodesSettings))
