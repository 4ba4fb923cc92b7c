"""Organization hooks (webhooks and commands), their delivery log, Kubernetes apply requests.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType, UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organization_id", sa.String(32), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("command", JSONType, nullable=True),
        sa.Column("events", JSONType, nullable=False),
        sa.Column("payload_format", sa.String(20), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_hooks_organization_id", "hooks", ["organization_id"])
    op.create_table(
        "hook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("hook_id", sa.String(32), sa.ForeignKey("hooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("organization_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("log", JSONType, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    for col in ("hook_id", "organization_id", "subject_id", "status"):
        op.create_index(f"ix_hook_deliveries_{col}", "hook_deliveries", [col])
    op.create_index("ix_hook_deliveries_org_created", "hook_deliveries", ["organization_id", "created_at"])
    op.create_table(
        "kubernetes_applies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organization_id", sa.String(32), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("optimization_id", sa.String(32), nullable=False),
        sa.Column("lines", JSONType, nullable=True),
        sa.Column("options", JSONType, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("applied", JSONType, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    for col in ("organization_id", "optimization_id"):
        op.create_index(f"ix_kubernetes_applies_{col}", "kubernetes_applies", [col])


def downgrade() -> None:
    op.drop_table("kubernetes_applies")
    op.drop_table("hook_deliveries")
    op.drop_table("hooks")
