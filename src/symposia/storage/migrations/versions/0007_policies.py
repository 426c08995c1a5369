"""policies: a run's policy settings, state and termination; agents' kinds; branching; cost

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("policy_config", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("policy_state", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("termination", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("ended_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("branch_turn", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("awaiting_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("open_turn_bot", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("on_human_timeout", sa.String(10), nullable=True))
    with op.batch_alter_table("run_bots") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default=sa.text("'bot'"))
        )
        batch.add_column(
            sa.Column("description", sa.Text(), nullable=False, server_default=sa.text("''"))
        )
    with op.batch_alter_table("run_bot_edits") as batch:
        batch.add_column(sa.Column("event", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("turn", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("cost_usd")
        batch.drop_column("round")
    with op.batch_alter_table("run_bot_edits") as batch:
        batch.drop_column("turn")
        batch.drop_column("event")
    with op.batch_alter_table("run_bots") as batch:
        batch.drop_column("description")
        batch.drop_column("kind")
    with op.batch_alter_table("runs") as batch:
        for column in (
            "on_human_timeout",
            "open_turn_bot",
            "awaiting_until",
            "branch_turn",
            "parent_id",
            "ended_by",
            "termination",
            "policy_state",
            "policy_config",
        ):
            batch.drop_column(column)
