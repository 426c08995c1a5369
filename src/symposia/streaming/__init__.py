"""Delivery of event logs to clients."""

from symposia.streaming.sse import encode, event_stream_response, parse_last_event_id

__all__ = ["encode", "event_stream_response", "parse_last_event_id"]
