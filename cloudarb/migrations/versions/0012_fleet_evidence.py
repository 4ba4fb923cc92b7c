"""Fleet evidence for the risk forecasts: when a spot instance was interrupted by its provider, and
when the reconciler last saw an instance present (the interruption happened after that).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deploy_instances") as batch:
        batch.add_column(sa.Column("interrupted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_seen_at", UTCDateTime(), nullable=True))
    op.create_index("ix_deploy_instances_interrupted_at", "deploy_instances", ["interrupted_at"])


def downgrade() -> None:
    op.drop_index("ix_deploy_instances_interrupted_at", table_name="deploy_instances")
    with op.batch_alter_table("deploy_instances") as batch:
        batch.drop_column("last_seen_at")
        batch.drop_column("interrupted_at")
