"""finish reason: why the model stopped a turn (`stop`, `length`, `tool_calls`), kept with
its message so a stream rebuilt from storage tells `finish_reason` as the live one did

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("finish_reason", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("finish_reason")
