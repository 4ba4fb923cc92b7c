"""Usage history: optional scheduler readings per hour (GPUs running at the hour's end, GPUs started).

Both columns are nullable, so existing rows keep their meaning (GPU-hours only) and the models that
need the readings simply do not compete for those workloads. Downgrade drops the two columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_history") as batch:
        batch.add_column(sa.Column("gpus_at_end", sa.Float(), nullable=True))
        batch.add_column(sa.Column("gpus_started", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_history") as batch:
        batch.drop_column("gpus_started")
        batch.drop_column("gpus_at_end")
