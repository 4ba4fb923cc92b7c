"""Pricing ingestion: provider status, hourly OHLC of price ticks, price-change events.

``price_ticks_hourly`` is a TimescaleDB continuous aggregate when the extension is installed (with
compression and retention policies on the ``price_ticks`` hypertable); otherwise it is a plain
table with the same columns, maintained by the ingest write path (SQLite and plain PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudarb.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COMPRESS_AFTER = "7 days"
RETAIN_TICKS = "400 days"


def _timescale() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is not None


def upgrade() -> None:
    op.create_table(
        "provider_status",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("last_attempt_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("offers_count", sa.Integer(), nullable=False),
        sa.Column("last_duration_s", sa.Float(), nullable=True),
        sa.Column("next_run_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("running_job_id", sa.String(length=32), nullable=True),
        sa.Column("updated_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )
    with op.batch_alter_table("provider_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_status_next_run_at"), ["next_run_at"], unique=False)

    op.create_table(
        "price_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("offer_key", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("region", sa.String(length=120), nullable=False),
        sa.Column("gpu_model", sa.String(length=80), nullable=False),
        sa.Column("instance_type", sa.String(length=200), nullable=False),
        sa.Column("spot", sa.Boolean(), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("old_price_per_hour", sa.Float(), nullable=True),
        sa.Column("new_price_per_hour", sa.Float(), nullable=False),
        sa.Column("observed_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("price_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_price_events_created_at"), ["created_at"], unique=False)

    if _timescale():
        _timescale_objects()
    else:
        op.create_table(
            "price_ticks_hourly",
            sa.Column("offer_key", sa.String(length=32), nullable=False),
            sa.Column("bucket", cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
            sa.Column("open", sa.Float(), nullable=False),
            sa.Column("high", sa.Float(), nullable=False),
            sa.Column("low", sa.Float(), nullable=False),
            sa.Column("close", sa.Float(), nullable=False),
            sa.Column("open_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
            sa.Column("close_at", cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
            sa.Column("ticks", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("offer_key", "bucket"),
        )
        _backfill_hourly()


def _backfill_hourly() -> None:
    """Ticks stored before this revision get their hourly rows (plain path only)."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            """
            INSERT INTO price_ticks_hourly (offer_key, bucket, open, high, low, close, open_at, close_at, ticks)
            SELECT offer_key, date_trunc('hour', observed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   (array_agg(price_per_hour ORDER BY observed_at))[1], max(price_per_hour), min(price_per_hour),
                   (array_agg(price_per_hour ORDER BY observed_at DESC))[1],
                   min(observed_at), max(observed_at), count(*)
            FROM price_ticks GROUP BY 1, 2
            """
        )
        return
    # SQLite stores UTC datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text
    op.execute(
        """
        INSERT INTO price_ticks_hourly (offer_key, bucket, open, high, low, close, open_at, close_at, ticks)
        SELECT g.offer_key, g.bucket,
               (SELECT t.price_per_hour FROM price_ticks t WHERE t.offer_key = g.offer_key
                  AND t.observed_at = g.open_at),
               g.high, g.low,
               (SELECT t.price_per_hour FROM price_ticks t WHERE t.offer_key = g.offer_key
                  AND t.observed_at = g.close_at),
               g.open_at, g.close_at, g.ticks
        FROM (SELECT offer_key, strftime('%Y-%m-%d %H:00:00.000000', observed_at) AS bucket,
                     max(price_per_hour) AS high, min(price_per_hour) AS low,
                     min(observed_at) AS open_at, max(observed_at) AS close_at, count(*) AS ticks
              FROM price_ticks GROUP BY 1, 2) AS g
        """
    )


def _timescale_objects() -> None:
    op.execute(
        "ALTER TABLE price_ticks SET (timescaledb.compress, timescaledb.compress_segmentby = 'offer_key', "
        "timescaledb.compress_orderby = 'observed_at DESC')"
    )
    op.execute(f"SELECT add_compression_policy('price_ticks', INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)")
    op.execute(f"SELECT add_retention_policy('price_ticks', INTERVAL '{RETAIN_TICKS}', if_not_exists => true)")
    op.execute(
        """
        CREATE MATERIALIZED VIEW price_ticks_hourly
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT offer_key, time_bucket(INTERVAL '1 hour', observed_at) AS bucket,
               first(price_per_hour, observed_at) AS open, max(price_per_hour) AS high,
               min(price_per_hour) AS low, last(price_per_hour, observed_at) AS close,
               min(observed_at) AS open_at, max(observed_at) AS close_at, count(*)::integer AS ticks
        FROM price_ticks GROUP BY offer_key, bucket
        WITH NO DATA
        """
    )
    op.execute(
        "SELECT add_continuous_aggregate_policy('price_ticks_hourly', start_offset => INTERVAL '3 days', "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true)"
    )
    op.execute(f"SELECT add_retention_policy('price_ticks_hourly', INTERVAL '{RETAIN_TICKS}', if_not_exists => true)")


def downgrade() -> None:
    if _timescale():
        op.execute("SELECT remove_retention_policy('price_ticks_hourly', if_exists => true)")
        op.execute("SELECT remove_continuous_aggregate_policy('price_ticks_hourly', if_not_exists => true)")
        op.execute("DROP MATERIALIZED VIEW IF EXISTS price_ticks_hourly")
        op.execute("SELECT remove_retention_policy('price_ticks', if_exists => true)")
        op.execute("SELECT remove_compression_policy('price_ticks', if_exists => true)")
        op.execute(
            "SELECT decompress_chunk(c, true) FROM show_chunks('price_ticks') AS c"
        )
        op.execute("ALTER TABLE price_ticks SET (timescaledb.compress = false)")
    else:
        op.drop_table("price_ticks_hourly")
    with op.batch_alter_table("price_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_events_created_at"))
    op.drop_table("price_events")
    with op.batch_alter_table("provider_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_status_next_run_at"))
    op.drop_table("provider_status")
