"""Job bodies moved into the optimize feature folder: rewrite the dotted paths of stored jobs.

A job row names its body by dotted path, and a queued or retried job is loaded by that path; jobs
stored before the move would otherwise fail with an import error. Downgrade writes the old paths back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MOVES = {
    "cloudarb.jobs.optimize.body": "cloudarb.optimize.jobs.body",
    "cloudarb.jobs.policies.body": "cloudarb.optimize.policy_runs.body",
}


def _rewrite(pairs: dict[str, str]) -> None:
    jobs = sa.table("job_runs", sa.column("function", sa.String))
    for old, new in pairs.items():
        op.execute(jobs.update().where(jobs.c.function == old).values(function=new))


def upgrade() -> None:
    _rewrite(MOVES)


def downgrade() -> None:
    _rewrite({new: old for old, new in MOVES.items()})
