"""Model providers behind one interface, addressed as `provider/model`."""

from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    Provider,
    StreamEnd,
    TextDelta,
)
from symposia.providers.registry import ProviderRegistry, split_model

__all__ = [
    "ChatMessage",
    "CompletionRequest",
    "Delta",
    "Provider",
    "ProviderRegistry",
    "StreamEnd",
    "TextDelta",
    "split_model",
]
