"""bot start settings: each run bot's settings as the run started, so a transcript shows
what a bot began with and every change after (an edit stores only the new values)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for a run stored before: its start is not known (exports say so).
    op.add_column("run_bots", sa.Column("start", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_bots") as batch:
        batch.drop_column("start")
