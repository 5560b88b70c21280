"""One exception hierarchy for the whole library."""

from __future__ import annotations


class TieredMemoryError(Exception):
    """Base class of every error raised by tiered-memory."""


class InvalidMessageError(TieredMemoryError, ValueError):
    """A message (or an id) is malformed; nothing was stored."""


class ConfigError(TieredMemoryError, ValueError):
    """A configuration value is out of range or inconsistent."""


class StoreError(TieredMemoryError):
    """The session store or the long-term store failed."""


class SummarizerError(TieredMemoryError):
    """The summarizer failed; the messages it was given stay pending and are retried."""


class EmbedderError(TieredMemoryError):
    """The embedder failed or returned vectors of the wrong shape."""
