"""Deployment targets: a deployment made by a Kubernetes apply or a Terraform command hook, besides the
providers' own APIs (``target`` = ``cloud`` | ``kubernetes`` | ``terraform``), and what that target
reported (``details``: the namespace and shared objects of an apply; the working directory, every hook
run's exit code and bounded output, and the Terraform outputs of a Terraform deployment).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("target", sa.String(20), nullable=False, server_default="cloud"))
        batch.add_column(sa.Column("details", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("details")
        batch.drop_column("target")
