"""Allocation lines keep the launch success probability the optimizer priced them with (a spot offer's
share of launches that get capacity; None where the offer states none, read as 1).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("allocation_lines") as batch:
        batch.add_column(sa.Column("launch_success_probability", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allocation_lines") as batch:
        batch.drop_column("launch_success_probability")
