"""reply stop and alternatives: a stop asked of a reply on another process, and the
earlier answers of a regenerated question

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("replies", sa.Column("stop_requested", sa.Boolean(), nullable=True))
    op.add_column("messages", sa.Column("alternatives", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("alternatives")
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("stop_requested")
