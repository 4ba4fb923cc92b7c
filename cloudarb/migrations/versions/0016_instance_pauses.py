"""Stop and start of deployment instances: the intent and the paused spans metering leaves out.

``desired_state`` is a stop or start asked and not yet verified (``stopped`` | ``running``; NULL when
nothing is asked), committed before the provider call so a worker crash in between is finished by the
reconciler. ``paused_at`` opens a pause (the instance was seen stopped at a provider that bills no
compute while stopped) and ``pauses`` keeps the closed ones as ``[[start, end], ...]`` (ISO times);
metering subtracts both. ``can_stop`` is the provider's stop/start capability for this instance,
recorded at launch (the API refuses a stop without loading a provider module), and
``billing_minimum_per_run`` says whether the minimum charge applies to each run (EC2: each start of a
stopped instance bills at least one minute) or once to the total.

Rows written before this revision: non-spot rows of providers that can stop and start (aws, runpod,
vast, tensordock, local) get ``can_stop``; EC2 rows get the per-run minimum.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

STOPPABLE = ("aws", "runpod", "vast", "tensordock", "local")


def upgrade() -> None:
    with op.batch_alter_table("deploy_instances") as batch:
        batch.add_column(sa.Column("desired_state", sa.String(20), nullable=True))
        batch.add_column(sa.Column("paused_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("pauses", JSONType, nullable=True))
        batch.add_column(sa.Column("can_stop", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("billing_minimum_per_run", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    instances = sa.table("deploy_instances", sa.column("provider", sa.String), sa.column("spot", sa.Boolean),
                         sa.column("can_stop", sa.Boolean), sa.column("billing_minimum_per_run", sa.Boolean))
    op.execute(instances.update().where(instances.c.provider.in_(STOPPABLE), instances.c.spot == sa.false())
               .values(can_stop=True))
    op.execute(instances.update().where(instances.c.provider == "aws").values(billing_minimum_per_run=True))


def downgrade() -> None:
    with op.batch_alter_table("deploy_instances") as batch:
        batch.drop_column("billing_minimum_per_run")
        batch.drop_column("can_stop")
        batch.drop_column("pauses")
        batch.drop_column("paused_at")
        batch.drop_column("desired_state")
