"""Application services: what the routers call."""

from symposia.services.runs import RunService, default_bots

__all__ = ["RunService", "default_bots"]
