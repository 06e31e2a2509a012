"""Governance: tool policies (catalog entries, a user's own servers), pinned tool
definitions, the tool-call history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approved_mcps") as batch:
        batch.add_column(sa.Column("tool_policy", sa.JSON(), nullable=True))
    with op.batch_alter_table("mcp_connections") as batch:
        batch.add_column(sa.Column("tool_policy", sa.JSON(), nullable=True))
    op.create_table(
        "tool_pins",
        sa.Column("connection_id", sa.String(32), primary_key=True),
        sa.Column("tool_name", sa.String(256), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("pending_digest", sa.String(64), nullable=True),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("accepted_by", sa.String(200), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("path", sa.String(16), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("persona_id", sa.String(128), nullable=False),
        sa.Column("server_id", sa.String(32), nullable=False),
        sa.Column("tool", sa.String(256), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("arguments_bytes", sa.Integer(), nullable=False),
        sa.Column("result_bytes", sa.Integer(), nullable=False),
        sa.Column("arguments_hash", sa.String(64), nullable=False),
        sa.Column("arguments_enc", sa.Text(), nullable=True),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_tool_calls_at", "tool_calls", ["at"])
    op.create_index("ix_tool_calls_username", "tool_calls", ["username"])
    op.create_index("ix_tool_calls_forwarded", "tool_calls", ["forwarded"])


def downgrade() -> None:
    op.drop_table("tool_calls")
    op.drop_table("tool_pins")
    with op.batch_alter_table("mcp_connections") as batch:
        batch.drop_column("tool_policy")
    with op.batch_alter_table("approved_mcps") as batch:
        batch.drop_column("tool_policy")
