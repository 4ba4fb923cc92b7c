"""Deployments, provider instances (intent rows), attempts, cost ledger and budgets (the deploy stage).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deploy_meta",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organization_id", sa.String(32), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("optimization_id", sa.String(32), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("spec", JSONType, nullable=False),
        sa.Column("lifetime_s", sa.Float(), nullable=False),
        sa.Column("max_lifetime_s", sa.Float(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("ssh_public_key", sa.Text(), nullable=True),
        sa.Column("ssh_private_key_enc", sa.Text(), nullable=True),
        sa.Column("private_key_shown", sa.Boolean(), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    for col in ("organization_id", "optimization_id", "status", "expires_at", "created_at"):
        op.create_index(f"ix_deployments_{col}", "deployments", [col])
    op.create_table(
        "deploy_instances",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organization_id", sa.String(32), nullable=True),
        sa.Column("deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("line_index", sa.Integer(), nullable=False),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("workload_id", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("account", sa.String(80), nullable=False),
        sa.Column("offer_key", sa.String(200), nullable=False),
        sa.Column("region", sa.String(120), nullable=False),
        sa.Column("zone", sa.String(120), nullable=True),
        sa.Column("instance_type", sa.String(200), nullable=False),
        sa.Column("gpu_model", sa.String(80), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("spot", sa.Boolean(), nullable=False),
        sa.Column("price_per_hour", sa.Float(), nullable=False),
        sa.Column("reported_rate", sa.Float(), nullable=True),
        sa.Column("billing_granularity_s", sa.Integer(), nullable=False),
        sa.Column("billing_minimum_s", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("provider_id", sa.String(200), nullable=True),
        sa.Column("address", sa.String(200), nullable=True),
        sa.Column("ssh_port", sa.Integer(), nullable=True),
        sa.Column("ssh_user", sa.String(40), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("state_at", UTCDateTime(), nullable=False),
        sa.Column("launched_at", UTCDateTime(), nullable=True),
        sa.Column("running_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("billing_started_at", UTCDateTime(), nullable=True),
        sa.Column("billing_stopped_at", UTCDateTime(), nullable=True),
        sa.Column("metered_until", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("destroy_attempts", sa.Integer(), nullable=False),
        sa.Column("next_action_at", UTCDateTime(), nullable=True),
    )
    for col in ("organization_id", "deployment_id", "state", "provider_id", "expires_at", "next_action_at"):
        op.create_index(f"ix_deploy_instances_{col}", "deploy_instances", [col])
    op.create_index("ix_deploy_instances_provider_account", "deploy_instances", ["provider", "account"])
    op.create_table(
        "deploy_attempts",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("line_index", sa.Integer(), nullable=False),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("offer_key", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deploy_attempts_deployment_id", "deploy_attempts", ["deployment_id"])
    op.create_table(
        "deploy_blocked_offers",
        sa.Column("offer_key", sa.String(200), primary_key=True),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "cost_ledger",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("organization_id", sa.String(32), nullable=True),
        sa.Column("instance_id", sa.String(32), sa.ForeignKey("deploy_instances.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("deployment_id", sa.String(32), nullable=True),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("billed_seconds", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
    )
    for col in ("organization_id", "instance_id", "deployment_id", "period_end"):
        op.create_index(f"ix_cost_ledger_{col}", "cost_ledger", [col])
    op.create_table(
        "budgets",
        sa.Column("organization_id", sa.String(32), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("monthly_limit", sa.Float(), nullable=False),
        sa.Column("thresholds", JSONType, nullable=False),
        sa.Column("hard_stop", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "deploy_alerts",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("organization_id", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("dedupe", sa.String(300), nullable=False, unique=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    for col in ("organization_id", "kind", "created_at"):
        op.create_index(f"ix_deploy_alerts_{col}", "deploy_alerts", [col])


def downgrade() -> None:
    for table in ("deploy_alerts", "budgets", "cost_ledger", "deploy_blocked_offers",
                  "deploy_attempts", "deploy_instances", "deployments", "deploy_meta"):
        op.drop_table(table)
