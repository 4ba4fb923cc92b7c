"""Offers record their seller; GPU names stored before the identity table split them are renamed.

A marketplace or reseller (provider ``shadeform``) rents out machines of many sellers
(``lambdalabs``, ``hyperstack``...): caps, denials and placement must tell them apart, so every offer
now carries ``seller`` (empty when the provider is the seller), and so does each allocation line.
The GPU table split "A100 40GB" into its SXM and PCIe variants and named "V100" by its memory;
current offers stored under the old names are renamed to what ``ingestion.gpu_specs.LEGACY_NAMES``
maps them to (copied here: a migration must not change when the live table does). Downgrade drops
the columns and writes the old names back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RENAMES = {"A100 40GB": "A100 40GB SXM", "V100": "V100 16GB"}


def _rename(pairs: dict[str, str]) -> None:
    offers = sa.table("offers", sa.column("gpu_model", sa.String))
    for old, new in pairs.items():
        op.execute(offers.update().where(offers.c.gpu_model == old).values(gpu_model=new))


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("seller", sa.String(length=60), nullable=False, server_default=""))
        batch.create_index("ix_offers_provider_seller", ["provider", "seller"])
    with op.batch_alter_table("allocation_lines") as batch:
        batch.add_column(sa.Column("seller", sa.String(length=60), nullable=False, server_default=""))
    _rename(RENAMES)


def downgrade() -> None:
    _rename({new: old for old, new in RENAMES.items()})
    with op.batch_alter_table("allocation_lines") as batch:
        batch.drop_column("seller")
    with op.batch_alter_table("offers") as batch:
        batch.drop_index("ix_offers_provider_seller")
        batch.drop_column("seller")
