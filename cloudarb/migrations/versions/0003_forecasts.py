"""Forecasts: model versions (champion/challenger), stored forecasts, usage history, demand opt-in.

Plain tables on SQLite and PostgreSQL alike (no TimescaleDB objects: forecasts are small and read by
series key, not scanned by time).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudarb.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC = cloudarb.db.types.UTCDateTime
JSON = cloudarb.db.types.JSONType
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forecast_models",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=True),
        sa.Column("series_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("data_hash", sa.String(length=64), nullable=True),
        sa.Column("trained_at", UTC(timezone=True), nullable=False),
        sa.Column("is_champion", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_forecast_models_organization_id", "forecast_models", ["organization_id"])
    op.create_index("ix_forecast_models_series", "forecast_models", ["scope", "series_key", "is_champion"])

    op.create_table(
        "forecasts",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=True),
        sa.Column("series_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("offer_key", sa.String(length=32), nullable=True),
        sa.Column("workload_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("origin", UTC(timezone=True), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("fallback_reason", sa.Text(), nullable=True),
        sa.Column("paths", JSON, nullable=False),
        sa.Column("backtest", JSON, nullable=True),
        sa.Column("volatility", sa.Float(), nullable=True),
        sa.Column("data_hash", sa.String(length=64), nullable=True),
        sa.Column("model_version_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "series_key", "origin", name="uq_forecasts_scope_series_origin"),
    )
    op.create_index("ix_forecasts_organization_id", "forecasts", ["organization_id"])
    op.create_index("ix_forecasts_offer_key", "forecasts", ["offer_key"])
    op.create_index("ix_forecasts_series_created", "forecasts", ["scope", "series_key", "created_at"])

    op.create_table(
        "usage_history",
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("workload_id", sa.String(length=200), nullable=False),
        sa.Column("hour", UTC(timezone=True), nullable=False),
        sa.Column("gpu_hours", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organization_id", "workload_id", "hour"),
    )

    op.create_table(
        "demand_policies",
        sa.Column("policy_id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("quantile", sa.Float(), nullable=False),
        sa.Column("horizon_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("policy_id"),
    )
    op.create_index("ix_demand_policies_organization_id", "demand_policies", ["organization_id"])

    op.create_table(
        "forecast_schedule",
        sa.Column("task", sa.String(length=80), nullable=False),
        sa.Column("next_run_at", UTC(timezone=True), nullable=False),
        sa.Column("last_job_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("task"),
    )


def downgrade() -> None:
    op.drop_table("forecast_schedule")
    op.drop_index("ix_demand_policies_organization_id", table_name="demand_policies")
    op.drop_table("demand_policies")
    op.drop_table("usage_history")
    op.drop_index("ix_forecasts_series_created", table_name="forecasts")
    op.drop_index("ix_forecasts_offer_key", table_name="forecasts")
    op.drop_index("ix_forecasts_organization_id", table_name="forecasts")
    op.drop_table("forecasts")
    op.drop_index("ix_forecast_models_series", table_name="forecast_models")
    op.drop_index("ix_forecast_models_organization_id", table_name="forecast_models")
    op.drop_table("forecast_models")
