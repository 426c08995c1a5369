"""key limits, budget reservations and the usage ledger

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "key_limits",
        sa.Column("key_id", sa.String(length=32), primary_key=True),
        sa.Column("max_budget_nanos", sa.BigInteger(), nullable=True),
        sa.Column("budget_period", sa.String(length=10), nullable=True),
        sa.Column("models", sa.JSON(), nullable=True),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("max_parallel", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("period_index", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("spent_nanos", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("reserved_nanos", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "key_reservations",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
    )
    op.create_index("ix_key_reservations_key_id", "key_reservations", ["key_id"])
    op.create_index("ix_key_reservations_holder", "key_reservations", ["holder"])
    op.create_index("ix_key_reservations_lease_until", "key_reservations", ["lease_until"])
    op.create_table(
        "usage_ledger",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider_model", sa.String(length=200), nullable=True),
        sa.Column("surface", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("response_id", sa.String(length=64), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
    )
    op.create_index("ix_usage_ledger_at", "usage_ledger", ["at"])
    op.create_index("ix_usage_ledger_principal", "usage_ledger", ["principal"])
    op.create_index("ix_usage_ledger_key_id", "usage_ledger", ["key_id"])


def downgrade() -> None:
    op.drop_table("usage_ledger")
    op.drop_table("key_reservations")
    op.drop_table("key_limits")
