"""Deployments, provider instances (intent rows), attempts, cost ledger and budgets (the deploy stage).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
