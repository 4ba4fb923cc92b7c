"""Two placements racing for one GPU on PostgreSQL, with real concurrency: exactly one wins."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from cloudarb.agent.protocol import RegisterRequest
from cloudarb.config import NodesSettings
from cloudarb.db import migrate
from cloudarb.db.engine import Database
from cloudarb.db.models_nodes import GpuAssignment, Node, Placement
from cloudarb.nodes import agents, placements, service
from cloudarb.nodes.placements import PlacementRequest
from cloudarb.storage import accounts
from tests.nodes.helpers import host
from tests.support import PG_URL, wait_for

SETTINGS = NodesSettings()
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    name = f"cloudarb_nodes_race_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def new_node(db: Database, gpus: int) -> tuple[str, str]:
    name = f"n{uuid.uuid4().hex[:8]}"
    with db.session() as session:
        org = accounts.get_or_create_org(session, name="race")
        token = service.create_join_token(session, SETTINGS, organization_id=org.id, actor="t", node_name=name,
                                          site="", price_per_gpu_hour=1.0, ttl_s=None).secret
    with db.session() as session:
        reg = agents.register(session, SETTINGS, RegisterRequest(join_token=token, host=host(name, gpus)))
        return org.id, reg.node.id


def request(db_session: object, org: str, node: Node, key: str) -> PlacementRequest:
    return PlacementRequest(organization_id=org, node=node, gpu_label="H100 SXM", instance_key=key, image="img")


def states(db: Database, node_id: str) -> tuple[list[str], int]:
    with db.session() as session:
        rows = session.scalars(select(Placement.state).where(Placement.node_id == node_id)).all()
        held = session.scalar(select(func.count()).select_from(GpuAssignment).where(GpuAssignment.node_id == node_id))
        return sorted(rows), int(held or 0)


def test_second_transaction_waits_then_loses(db: Database) -> None:
    """B's assignment blocks on A's uncommitted hold of the only GPU; once A commits, B stays queued."""
    org, node_id = new_node(db, 1)
    outcome: dict[str, str] = {}
    with db.session() as a:
        node = a.get(Node, node_id)
        assert node is not None
        assert placements.create(a, SETTINGS, request(a, org, node, f"{node_id}-a")).placement.state == "assigned"

        def second() -> None:
            with db.session() as b:
                other = b.get(Node, node_id)
                assert other is not None
                outcome["b"] = placements.create(b, SETTINGS, request(b, org, other, f"{node_id}-b")).placement.state

        thread = threading.Thread(target=second)
        thread.start()
        # Autocommit: pg_stat_activity is a snapshot taken once per transaction, so a probe inside one
        # transaction that first looked before B blocked would never see B wait.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
            wait_for(lambda: probe.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar(), timeout=20)
    thread.join(timeout=30)
    assert outcome == {"b": "queued"}
    assert states(db, node_id) == (["assigned", "queued"], 1)


@pytest.mark.parametrize("gpus", [1, 2])
def test_many_racers_one_gpu_each(db: Database, gpus: int) -> None:
    org, node_id = new_node(db, gpus)
    racers = 8
    barrier = threading.Barrier(racers)
    errors: list[BaseException] = []

    def race(i: int) -> None:
        try:
            barrier.wait(timeout=20)
            with db.session() as session:
                node = session.get(Node, node_id)
                assert node is not None
                placements.create(session, SETTINGS, request(session, org, node, f"{node_id}-{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    rows, held = states(db, node_id)
    assert held == gpus
    assert rows.count("assigned") == gpus and rows.count("queued") == racers - gpus
    with db.session() as session:
        uuids = [u for p in session.scalars(select(Placement).where(Placement.node_id == node_id,
                                                                     Placement.state == "assigned"))
                 for u in p.gpu_uuids]
    assert len(uuids) == len(set(uuids)) == gpus
