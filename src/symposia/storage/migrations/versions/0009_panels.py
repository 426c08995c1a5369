"""panels: a conversation's supervisor and specialists, and how each question was routed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("panel", sa.JSON(), nullable=True))
    op.add_column("replies", sa.Column("routing", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("routing", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("routing")
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("routing")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("panel")
