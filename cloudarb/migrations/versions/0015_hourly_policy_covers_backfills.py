"""TimescaleDB: the hourly continuous aggregate's refresh policy covers all of history, not 3 days.

Each ingest refreshes the hours it touched once it has committed (`cloudarb.ingest.timescale`), but
a process that dies between its commit and that refresh, or a refresh that fails, left back-filled
hours older than the policy's 3-day window stale below the aggregate's watermark for good (the
real-time part only aggregates raw ticks past the watermark), and stores written before ingests
refreshed were never materialized at all (every hourly query re-aggregated raw ticks: 19 s at 2M).
With ``start_offset => NULL`` every policy run (each 15 minutes) materializes whatever TimescaleDB
has logged as changed anywhere in history: measured at 10M ticks on a busy 2-core host, 3 s when
nothing is pending, 72 s for a full re-materialization (once, on a store that never had one).
Raw ticks and hourly rows share their 400-day retention, so the policy never re-materializes a
region whose ticks were dropped. Plain PostgreSQL and SQLite: nothing to do.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _continuous_aggregate() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is None:
        return False
    return bind.execute(sa.text(
        "SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = 'price_ticks_hourly'"
    )).first() is not None


def _policy(start_offset: str) -> None:
    op.execute("SELECT remove_continuous_aggregate_policy('price_ticks_hourly', true)")  # if it exists
    op.execute(
        f"SELECT add_continuous_aggregate_policy('price_ticks_hourly', start_offset => {start_offset}, "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')"
    )


def upgrade() -> None:
    if _continuous_aggregate():
        _policy("NULL")


def downgrade() -> None:
    if _continuous_aggregate():
        _policy("INTERVAL '3 days'")
