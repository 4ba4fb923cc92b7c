"""The fleet evidence and the interruption columns on PostgreSQL (a fresh database at migration head)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloudarb.context import Context, build_context
from cloudarb.db.types import utcnow
from cloudarb.forecasts.fleet import fleet_evidence, pool_key
from tests.cloudarb.test_migrations import pg_url  # noqa: F401
from tests.forecasts_fleet.test_fleet_feed import ZONE, Fleet, offer, served
from tests.support import make_settings


@pytest.fixture()
def pg_ctx(pg_url: str, tmp_path: Path) -> Iterator[Context]:  # noqa: F811
    context = build_context(make_settings(database_url=pg_url, data_dir=tmp_path, seed_snapshot=False))
    yield context
    context.close()


@pytest.mark.postgres
def test_fleet_evidence_and_the_served_rate_on_postgres(pg_ctx: Context) -> None:
    prior = served(pg_ctx, offer()).rates["aws:p3"]
    fleet, now = Fleet(pg_ctx), utcnow()
    fleet.instance(started=now - timedelta(hours=3), interrupted=now - timedelta(hours=1))
    fleet.instance(started=now - timedelta(hours=4))
    fleet.refused(2)
    with pg_ctx.db.session() as session:
        ev = fleet_evidence(session, now=now, window=timedelta(days=30))[pool_key("aws", "p3.2xlarge", "us-east-1",
                                                                                  ZONE)]
    assert (ev.interruptions, ev.launches, ev.refusals) == (1, 2, 2)
    assert ev.exposure_hours == pytest.approx(6.0, abs=1e-6)
    assert served(pg_ctx, offer()).rates["aws:p3"] > prior
