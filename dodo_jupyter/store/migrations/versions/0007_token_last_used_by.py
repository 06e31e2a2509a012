"""Which agent used a gateway token last (client, Jupyter AI chat and persona).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_mcp_tokens") as batch:
        batch.add_column(sa.Column("last_used_by", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_mcp_tokens") as batch:
        batch.drop_column("last_used_by")
