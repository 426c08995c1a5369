"""Persistence: SQLAlchemy 2 (async) behind repository interfaces; SQLite or PostgreSQL."""

from symposia.storage.repositories import RunRepository
from symposia.storage.sql_conversations import SqlConversationRepository
from symposia.storage.sql_runs import SqlRunRepository

__all__ = ["RunRepository", "SqlConversationRepository", "SqlRunRepository"]
