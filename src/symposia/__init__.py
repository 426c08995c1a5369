"""Symposia: a self-hostable server that streams LLM conversations and multi-agent runs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
