"""Organizations' own container templates and their template policy (allow-list, custom images).

``node_templates`` gets a surrogate id, an owner (``organization_id``; None for the catalog) and names
unique per owner (``scope``: the organization's id, "" for the catalog), so one organization may name
a template as another did without either learning of the other. Rows are copied across (they are all
catalog rows before this revision). ``node_template_policies`` holds one organization's allow-list.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:45:00
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from alembic import op

from cloudarb.db.types import JSONType, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.String(32)
COPIED = ("name", "title", "image", "ports", "command", "env", "health_check", "organization_ids", "builtin",
          "created_at")
JSON_COLUMNS = ("ports", "command", "env", "health_check", "organization_ids")


def _copied() -> list[Any]:
    """The copied columns, typed, so values are read back as Python values and written again as such."""
    def kind(name: str) -> Any:
        if name in JSON_COLUMNS:
            return JSONType
        return UTCDateTime() if name == "created_at" else sa.Boolean() if name == "builtin" else sa.String()
    return [sa.column(name, kind(name)) for name in COPIED]


def _columns(with_id: bool) -> list[Any]:
    head: list[Any] = [
        sa.Column("id", ID, primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.String(80), nullable=False),
    ] if with_id else [sa.Column("name", sa.String(80), primary_key=True)]
    tail: list[Any] = [
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("image", sa.String(300), nullable=False),
        sa.Column("ports", JSONType, nullable=False),
        sa.Column("command", JSONType, nullable=True),
        sa.Column("env", JSONType, nullable=False),
        sa.Column("health_check", JSONType, nullable=False),
        sa.Column("organization_ids", JSONType, nullable=True),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    ]
    if with_id:
        tail += [
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("created_by", sa.String(320), nullable=False),
            sa.Column("updated_at", UTCDateTime(), nullable=False),
        ]
    return head + tail


def upgrade() -> None:
    conn = op.get_bind()
    old = sa.table("node_templates", *_copied())
    rows = [dict(r._mapping) for r in conn.execute(sa.select(old))]
    op.drop_table("node_templates")
    new = op.create_table(
        "node_templates", *_columns(True),
        sa.UniqueConstraint("scope", "name", name="uq_node_templates_scope_name"),
    )
    op.create_index("ix_node_templates_organization_id", "node_templates", ["organization_id"])
    if rows:
        op.bulk_insert(new, [{**r, "id": uuid.uuid4().hex, "scope": "", "organization_id": None, "description": "",
                              "created_by": "", "updated_at": r["created_at"]} for r in rows])
    op.create_table(
        "node_template_policies",
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("allowed_templates", JSONType, nullable=True),
        sa.Column("custom_images", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.String(320), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Back to one catalog keyed by name: organizations' own templates are dropped (they cannot be keyed)."""
    op.drop_table("node_template_policies")
    conn = op.get_bind()
    cur = sa.table("node_templates", sa.column("scope", sa.String()), *_copied())
    rows = [dict(r._mapping) for r in conn.execute(sa.select(*[cur.c[c] for c in COPIED]).where(cur.c.scope == ""))]
    op.drop_index("ix_node_templates_organization_id", table_name="node_templates")
    op.drop_table("node_templates")
    old = op.create_table("node_templates", *_columns(False))
    if rows:
        op.bulk_insert(old, rows)
