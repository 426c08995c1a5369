"""agent tools: the MCP servers or tools a run's bot may call, and the MCP tool calls a
turn ran (with their results and event ids)

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("run_bots", sa.Column("tools", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("tool_steps", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("tool_steps")
    with op.batch_alter_table("run_bots") as batch:
        batch.drop_column("tools")
