"""run takeover: how often a run was taken over, a stop asked of any process, the open turn

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("takeovers", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("stop_requested", sa.Text(), nullable=True))
        batch.add_column(sa.Column("open_turn_event", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_event", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for column in ("last_event", "open_turn_event", "stop_requested", "takeovers"):
            batch.drop_column(column)
