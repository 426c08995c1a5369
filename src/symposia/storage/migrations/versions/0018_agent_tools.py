"""agent tools: the MCP servers or tools a run's bot may call, the MCP tool calls a turn
ran (with their results and event ids), and the calls waiting for a person's approval

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("run_bots", sa.Column("tools", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("tool_steps", sa.JSON(), nullable=True))
    op.create_table(
        "tool_approvals",
        sa.Column("subject", sa.String(length=80), primary_key=True),
        sa.Column("call_id", sa.String(length=128), primary_key=True),
        sa.Column("stream_id", sa.String(length=80), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=200), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("tool_approvals")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("tool_steps")
    with op.batch_alter_table("run_bots") as batch:
        batch.drop_column("tools")
