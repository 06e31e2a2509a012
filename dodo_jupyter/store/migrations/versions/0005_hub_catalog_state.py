"""The hub catalog copy's bookkeeping: where it came from, its ETag, when it was good.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_catalog_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_url", sa.String(2048), nullable=False),
        sa.Column("etag", sa.String(200), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("hub_catalog_state")
