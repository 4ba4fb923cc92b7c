"""The team's own GPU hosts: nodes, join tokens, GPUs, placements, GPU assignments, commands, templates.

``node_gpu_assignments`` has the GPU (or MIG device) UUID as its primary key: a unit is held by at
most one live placement, enforced by the database (a row per held unit, deleted on release).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(60), nullable=False, unique=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("site", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("drained", sa.Boolean(), nullable=False),
        sa.Column("price_per_gpu_hour", sa.Float(), nullable=False),
        sa.Column("model_prices", JSONType, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("host_report", JSONType, nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("unhealthy_since", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_nodes_organization_id", "nodes", ["organization_id"])
    op.create_table(
        "node_join_tokens",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("node_name", sa.String(60), nullable=True),
        sa.Column("site", sa.String(120), nullable=False),
        sa.Column("price_per_gpu_hour", sa.Float(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("node_id", ID, nullable=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_node_join_tokens_organization_id", "node_join_tokens", ["organization_id"])
    op.create_table(
        "node_gpus",
        sa.Column("id", ID, primary_key=True),
        sa.Column("node_id", ID, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uuid", sa.String(100), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("parent_uuid", sa.String(100), nullable=True),
        sa.Column("mig_profile", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model", sa.String(80), nullable=False),
        sa.Column("model_known", sa.Boolean(), nullable=False),
        sa.Column("memory_total_mib", sa.Integer(), nullable=False),
        sa.Column("mig_enabled", sa.Boolean(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.UniqueConstraint("node_id", "uuid", name="uq_node_gpus_node_uuid"),
    )
    op.create_index("ix_node_gpus_node_id", "node_gpus", ["node_id"])
    op.create_table(
        "node_placements",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("node_id", ID, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("instance_key", sa.String(200), nullable=False, unique=True),
        sa.Column("deployment_id", sa.String(64), nullable=True),
        sa.Column("template", sa.String(80), nullable=False),
        sa.Column("image", sa.String(300), nullable=False),
        sa.Column("command", JSONType, nullable=True),
        sa.Column("env", JSONType, nullable=False),
        sa.Column("secret_env", JSONType, nullable=True),
        sa.Column("ports", JSONType, nullable=False),
        sa.Column("gpu_model", sa.String(80), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("gpu_uuids", JSONType, nullable=False),
        sa.Column("cpus", sa.Float(), nullable=True),
        sa.Column("memory_mib", sa.Integer(), nullable=True),
        sa.Column("workspace_volume", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("price_per_hour", sa.Float(), nullable=False),
        sa.Column("credentials_hash", sa.String(64), nullable=True),
        sa.Column("credential_unshown", sa.String(100), nullable=True),
        sa.Column("container_id", sa.String(100), nullable=True),
        sa.Column("published_ports", JSONType, nullable=False),
        sa.Column("flagged", sa.String(300), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("assigned_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("destroyed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_node_placements_organization_id", "node_placements", ["organization_id"])
    op.create_index("ix_node_placements_node_id", "node_placements", ["node_id"])
    op.create_index("ix_node_placements_deployment_id", "node_placements", ["deployment_id"])
    op.create_index("ix_node_placements_state", "node_placements", ["state"])
    op.create_index("ix_node_placements_queue", "node_placements", ["node_id", "state", "priority", "queued_at"])
    op.create_table(
        "node_gpu_assignments",
        sa.Column("gpu_uuid", sa.String(100), primary_key=True),
        sa.Column("node_id", ID, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("placement_id", ID, sa.ForeignKey("node_placements.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_node_gpu_assignments_node_id", "node_gpu_assignments", ["node_id"])
    op.create_index("ix_node_gpu_assignments_placement_id", "node_gpu_assignments", ["placement_id"])
    op.create_table(
        "node_commands",
        sa.Column("id", ID, primary_key=True),
        sa.Column("node_id", ID, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("placement_id", ID, sa.ForeignKey("node_placements.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("progress", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_node_commands_node_id", "node_commands", ["node_id"])
    op.create_index("ix_node_commands_placement_id", "node_commands", ["placement_id"])
    op.create_index("ix_node_commands_state", "node_commands", ["state"])
    op.create_table(
        "node_templates",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("image", sa.String(300), nullable=False),
        sa.Column("ports", JSONType, nullable=False),
        sa.Column("command", JSONType, nullable=True),
        sa.Column("env", JSONType, nullable=False),
        sa.Column("health_check", JSONType, nullable=False),
        sa.Column("organization_ids", JSONType, nullable=True),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("node_templates", "node_commands", "node_gpu_assignments", "node_placements", "node_gpus",
                  "node_join_tokens", "nodes"):
        op.drop_table(table)
