"""Production mode: a hook delivery queued on Redis is carried out by a real `cloudarb worker` (RQ),
its 5xx retried with back-off through RQ's delayed enqueue, on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloudarb.context import Context
from cloudarb.db.models_hooks import HookDelivery
from cloudarb.hooks import emit, store
from cloudarb.hooks.schemas import HookCreate
from cloudarb.storage import accounts
from tests.integration.conftest import pg_database, prod_ctx, prod_settings, start_worker  # noqa: F401
from tests.outputs.receivers import Receiver
from tests.support import wait_for


@pytest.mark.slow
def test_a_worker_delivers_and_retries(prod_ctx: Context, start_worker: Any) -> None:  # noqa: F811
    start_worker()
    with Receiver(503, 200) as rx:
        with prod_ctx.db.session() as session:
            org = accounts.get_or_create_org(session, name="hooks-prod").id
            store.create(session, prod_ctx.settings, organization_id=org, actor="t",
                         body=HookCreate(name="ops", kind="webhook", url=rx.url, events=["policy.adopt"]))
        result = emit(prod_ctx, org, "policy.adopt", {"policy_id": "p", "savings_per_hour": 3.5}, blocking=False)

        def delivered() -> bool:
            with prod_ctx.db.session() as session:
                row = session.get(HookDelivery, result.deliveries[0])
                return row is not None and row.status == "delivered"

        wait_for(delivered, timeout=90)
    with prod_ctx.db.session() as session:
        row = session.get(HookDelivery, result.deliveries[0])
        assert row is not None and row.attempts == 2 and [e["status_code"] for e in row.log] == [503, 200]
    assert json.loads(rx.requests[-1].body)["data"]["savings_per_hour"] == 3.5
