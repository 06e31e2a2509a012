"""The owner's creation time at the hub: tells a re-created hub user from the deleted one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("owner_identity") as batch:
        batch.add_column(sa.Column("hub_created", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("owner_identity") as batch:
        batch.drop_column("hub_created")
