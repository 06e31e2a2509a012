"""MCP connections, OAuth client registrations and pending authorizations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_connections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("catalog_id", sa.String(32), nullable=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("transport", sa.String(32), nullable=False),
        sa.Column("auth_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("issuer", sa.String(2048), nullable=True),
        sa.Column("resource", sa.String(2048), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("requested_scopes", sa.Text(), nullable=False),
        sa.Column("step_ups", sa.Integer(), nullable=False),
        sa.Column("oauth_client_id", sa.String(32), nullable=True),
        sa.Column("oauth_meta", sa.JSON(), nullable=True),
        sa.Column("tokens_enc", sa.Text(), nullable=True),
        sa.Column("headers_enc", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("tool_count", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_mcp_connections_username", "mcp_connections", ["username"])
    # One connection per user and server URL.
    op.create_index(
        "uq_mcp_connections_user_url", "mcp_connections", ["username", "url"], unique=True
    )
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(2048), nullable=False),
        sa.Column("redirect_uri", sa.String(2048), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(2048), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=True),
        sa.Column("registration_enc", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_oauth_clients_username", "oauth_clients", ["username"])
    op.create_table(
        "pending_auth",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("connection_id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("code_verifier_enc", sa.Text(), nullable=False),
        sa.Column("flow", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_pending_auth_connection_id", "pending_auth", ["connection_id"])


def downgrade() -> None:
    op.drop_index("ix_pending_auth_connection_id", table_name="pending_auth")
    op.drop_table("pending_auth")
    op.drop_index("ix_oauth_clients_username", table_name="oauth_clients")
    op.drop_table("oauth_clients")
    op.drop_index("uq_mcp_connections_user_url", table_name="mcp_connections")
    op.drop_index("ix_mcp_connections_username", table_name="mcp_connections")
    op.drop_table("mcp_connections")
