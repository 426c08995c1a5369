"""event ids: where each message's turn and each run's stream sit in their event stream

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("start_event", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("complete_event", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("done_event", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("done_event")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("complete_event")
        batch.drop_column("start_event")
