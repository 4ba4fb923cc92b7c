"""The hooks tables and deliveries on PostgreSQL: migration 0011 up and down, and a webhook delivered
by a job (with its status mirrored through the job kind's hook) on a database of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from cloudarb.context import build_context
from cloudarb.db import migrate
from cloudarb.db.models_hooks import HookDelivery
from cloudarb.hooks import emit, store
from cloudarb.hooks.schemas import HookCreate
from cloudarb.storage import accounts
from tests.outputs.receivers import Receiver
from tests.support import PG_URL, make_settings, wait_for

MINE = {"hooks", "hook_deliveries", "kubernetes_applies"}


@pytest.fixture()
def pg_url() -> Iterator[str]:
    name = f"cloudarb_hooks_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no server: the embedded tests still cover the code
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migration_0011_up_and_down(pg_url: str) -> None:
    migrate.upgrade(pg_url)
    engine = create_engine(pg_url)
    assert MINE <= set(inspect(engine).get_table_names())
    migrate.downgrade(pg_url, "0010")
    assert not MINE & set(inspect(engine).get_table_names())
    migrate.upgrade(pg_url)
    assert MINE <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_a_webhook_delivery_on_postgres(pg_url: str, tmp_path: Path) -> None:
    ctx = build_context(make_settings(database_url=pg_url, data_dir=tmp_path, seed_snapshot=False))
    try:
        migrate.upgrade(pg_url)
        with Receiver(502, 200) as rx:
            with ctx.db.session() as session:
                org = accounts.get_or_create_org(session, name="pg").id
                store.create(session, ctx.settings, organization_id=org, actor="t",
                             body=HookCreate(name="pg", kind="webhook", url=rx.url, events=["deploy.*"]))
            result = emit(ctx, org, "deploy.after", {"deployment_id": "d1"}, blocking=False)

            def done() -> HookDelivery | None:
                with ctx.db.session() as session:
                    row = session.get(HookDelivery, result.deliveries[0])
                    return row if row is not None and row.status == "delivered" else None

            row = wait_for(done, timeout=30)
        assert row.attempts == 2 and [e["status_code"] for e in row.log] == [502, 200]
        assert json.loads(rx.requests[-1].body)["data"] == {"deployment_id": "d1"}
    finally:
        ctx.close()
