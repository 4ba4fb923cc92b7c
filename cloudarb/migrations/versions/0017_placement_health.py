"""Placement health: the health check copied from the template when a placement is made (sent to the
agent with the place and start commands) and the health the agent last reported (``health`` =
``starting`` | ``healthy`` | ``unhealthy``; None: not checked), its detail and since when it is healthy.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType, UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("node_placements") as batch:
        batch.add_column(sa.Column("health_check", JSONType, nullable=True))
        batch.add_column(sa.Column("health", sa.String(20), nullable=True))
        batch.add_column(sa.Column("health_detail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("healthy_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_placements") as batch:
        batch.drop_column("healthy_since")
        batch.drop_column("health_detail")
        batch.drop_column("health")
        batch.drop_column("health_check")
