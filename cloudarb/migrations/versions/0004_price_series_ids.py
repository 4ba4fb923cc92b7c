"""Price ticks keyed by an integer series id instead of the offer key; no separate time index.

``price_series`` gives every offer key a small integer id; ``price_ticks`` and ``price_ticks_hourly``
store that id. The tick table's primary key is what bulk ingest spends its time maintaining, and an
(integer, timestamp) key is half as wide and compares without collation rules. Every reader asks
for one offer over a time range, which the primary key (series_id, observed_at) serves, so the old
``ix_price_ticks_observed_at`` goes (TimescaleDB prunes chunks by their time constraints, and
retention, compression and the continuous aggregate's refresh work chunk by chunk).

Existing rows are copied across (a join on the offer key); downgrade copies them back. With
TimescaleDB the hypertable, its policies and the continuous aggregate are rebuilt on the new column
(the aggregate is real-time, so it answers correctly before its policy first materializes it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudarb.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC = cloudarb.db.types.UTCDateTime
COMPRESS_AFTER = "7 days"
RETAIN_TICKS = "400 days"
_HOURLY_COLUMNS = "bucket, open, high, low, close, open_at, close_at, ticks"


def _timescale() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is not None


def _pk_name(table: str, key: sa.Column[object]) -> str:
    """Primary key names differ between the two shapes, so the new table is created while the old one
    (set aside under another name) still holds its name: no constraint renames, which hypertables
    would have to propagate to every chunk."""
    return f"{table}_series_pkey" if key.name == "series_id" else f"{table}_pkey"


def _tick_table(key: sa.Column[object]) -> None:
    op.create_table(
        "price_ticks",
        key,
        sa.Column("observed_at", UTC(timezone=True), nullable=False),
        sa.Column("price_per_hour", sa.Float(), nullable=False),
        sa.Column("available_instances", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(key.name, "observed_at", name=_pk_name("price_ticks", key)),
    )


def _hourly_table(key: sa.Column[object]) -> None:
    op.create_table(
        "price_ticks_hourly",
        key,
        sa.Column("bucket", UTC(timezone=True), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("open_at", UTC(timezone=True), nullable=False),
        sa.Column("close_at", UTC(timezone=True), nullable=False),
        sa.Column("ticks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(key.name, "bucket", name=_pk_name("price_ticks_hourly", key)),
    )


def _set_aside(table: str) -> str:
    """Rename ``table`` out of the way while its rows are copied into the new shape; returns the name."""
    old = f"{table}_0004_old"
    op.rename_table(table, old)
    return old


def _drop_timescale_objects() -> None:
    op.execute("SELECT remove_retention_policy('price_ticks_hourly', if_exists => true)")
    op.execute("SELECT remove_continuous_aggregate_policy('price_ticks_hourly', if_not_exists => true)")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS price_ticks_hourly")
    op.execute("SELECT remove_retention_policy('price_ticks', if_exists => true)")
    op.execute("SELECT remove_compression_policy('price_ticks', if_exists => true)")
    op.execute("SELECT decompress_chunk(c, true) FROM show_chunks('price_ticks') AS c")
    op.execute("ALTER TABLE price_ticks SET (timescaledb.compress = false)")


def _timescale_objects(key: str) -> None:
    """The 0002 objects (compression, retention, hourly continuous aggregate), on the ``key`` column."""
    op.execute(
        f"ALTER TABLE price_ticks SET (timescaledb.compress, timescaledb.compress_segmentby = '{key}', "
        "timescaledb.compress_orderby = 'observed_at DESC')"
    )
    op.execute(f"SELECT add_compression_policy('price_ticks', INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)")
    op.execute(f"SELECT add_retention_policy('price_ticks', INTERVAL '{RETAIN_TICKS}', if_not_exists => true)")
    op.execute(
        f"""
        CREATE MATERIALIZED VIEW price_ticks_hourly
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT {key}, time_bucket(INTERVAL '1 hour', observed_at) AS bucket,
               first(price_per_hour, observed_at) AS open, max(price_per_hour) AS high,
               min(price_per_hour) AS low, last(price_per_hour, observed_at) AS close,
               min(observed_at) AS open_at, max(observed_at) AS close_at, count(*)::integer AS ticks
        FROM price_ticks GROUP BY {key}, bucket
        WITH NO DATA
        """
    )
    op.execute(
        "SELECT add_continuous_aggregate_policy('price_ticks_hourly', start_offset => INTERVAL '3 days', "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true)"
    )
    op.execute(f"SELECT add_retention_policy('price_ticks_hourly', INTERVAL '{RETAIN_TICKS}', if_not_exists => true)")


def _hypertable() -> None:
    # No default time index: the primary key serves the readers (see the module docstring).
    op.execute(
        "SELECT create_hypertable('price_ticks', 'observed_at', chunk_time_interval => INTERVAL '1 day', "
        "create_default_indexes => false)"
    )


def upgrade() -> None:
    timescale = _timescale()
    op.create_table(
        "price_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("offer_key", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_key"),
    )
    op.execute(
        "INSERT INTO price_series (offer_key) SELECT offer_key FROM price_ticks "
        "UNION SELECT offer_key FROM price_ticks_hourly ORDER BY 1"
    )
    if timescale:
        _drop_timescale_objects()
    with op.batch_alter_table("price_ticks", schema=None) as batch_op:
        batch_op.drop_index("ix_price_ticks_observed_at")
    old = _set_aside("price_ticks")
    _tick_table(sa.Column("series_id", sa.Integer(), autoincrement=False, nullable=False))
    if timescale:
        _hypertable()
    op.execute(
        "INSERT INTO price_ticks (series_id, observed_at, price_per_hour, available_instances) "
        f"SELECT s.id, t.observed_at, t.price_per_hour, t.available_instances FROM {old} t "
        "JOIN price_series s ON s.offer_key = t.offer_key"
    )
    op.drop_table(old)
    if timescale:
        _timescale_objects("series_id")
        return
    old = _set_aside("price_ticks_hourly")
    _hourly_table(sa.Column("series_id", sa.Integer(), autoincrement=False, nullable=False))
    op.execute(
        f"INSERT INTO price_ticks_hourly (series_id, {_HOURLY_COLUMNS}) "
        f"SELECT s.id, {', '.join('h.' + c for c in _HOURLY_COLUMNS.split(', '))} FROM {old} h "
        "JOIN price_series s ON s.offer_key = h.offer_key"
    )
    op.drop_table(old)


def downgrade() -> None:
    timescale = _timescale()
    if timescale:
        _drop_timescale_objects()
    old = _set_aside("price_ticks")
    _tick_table(sa.Column("offer_key", sa.String(length=32), nullable=False))
    if timescale:
        _hypertable()
    op.execute(
        "INSERT INTO price_ticks (offer_key, observed_at, price_per_hour, available_instances) "
        f"SELECT s.offer_key, t.observed_at, t.price_per_hour, t.available_instances FROM {old} t "
        "JOIN price_series s ON s.id = t.series_id"
    )
    op.drop_table(old)
    with op.batch_alter_table("price_ticks", schema=None) as batch_op:
        batch_op.create_index("ix_price_ticks_observed_at", ["observed_at"], unique=False)
    if timescale:
        _timescale_objects("offer_key")
    else:
        old = _set_aside("price_ticks_hourly")
        _hourly_table(sa.Column("offer_key", sa.String(length=32), nullable=False))
        op.execute(
            f"INSERT INTO price_ticks_hourly (offer_key, {_HOURLY_COLUMNS}) "
            f"SELECT s.offer_key, {', '.join('h.' + c for c in _HOURLY_COLUMNS.split(', '))} FROM {old} h "
            "JOIN price_series s ON s.id = h.series_id"
        )
        op.drop_table(old)
    op.drop_table("price_series")
