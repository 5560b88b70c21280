"""One exception hierarchy for the whole library, and the credential masking of its messages."""

from __future__ import annotations

import logging
import re

# scheme://user:password@host -> scheme://user:***@host; also key=value credentials in DSNs.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+(?=@)")
_DSN_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|api[_-]?key|token|secret)\s*=\s*)(?P<q>['\"]?)[^\s'\"&;]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def mask_credentials(text: object) -> str:
    """``text`` with passwords in URLs and DSNs, and bearer tokens, replaced by ``***``."""
    masked = _URL_PASSWORD.sub(r"\g<head>***", str(text))
    masked = _DSN_PASSWORD.sub(r"\g<head>\g<q>***", masked)
    return _BEARER.sub(r"\g<head>***", masked)


class TieredMemoryError(Exception):
    """Base class of every error raised by tiered-memory (messages never carry credentials)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_credentials(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return mask_credentials(super().__str__())


class InvalidMessageError(TieredMemoryError, ValueError):
    """A message (or an id) is malformed; nothing was stored."""


class ConfigError(TieredMemoryError, ValueError):
    """A configuration value is out of range or inconsistent."""


class EmbedderChangedError(ConfigError):
    """The user's vectors were made by another embedder than this memory's; vectors of two
    models do not compare. ``TieredMemory.rebuild_vectors()`` re-embeds them with this one."""


class StoreError(TieredMemoryError):
    """The session store or the long-term store failed."""


class VectorIndexLostError(StoreError):
    """A user's vector index was unreadable (a crash mid-write can leave Chroma's index files
    truncated); the store dropped it. Nothing is lost: the session store holds every document,
    and the memory rebuilds the index from them."""


class SummarizerError(TieredMemoryError):
    """The summarizer failed; the messages it was given stay pending and are retried."""


class EmbedderError(TieredMemoryError):
    """The embedder failed or returned vectors of the wrong shape."""


class CredentialMaskingFilter(logging.Filter):
    """Masks credentials in every record of the ``tiered_memory`` loggers (exceptions included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = mask_credentials(record.msg)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = mask_credentials(logging.Formatter().formatException(record.exc_info))
        return True


__all__ = [
    "ConfigError",
    "CredentialMaskingFilter",
    "EmbedderChangedError",
    "EmbedderError",
    "InvalidMessageError",
    "StoreError",
    "SummarizerError",
    "TieredMemoryError",
    "VectorIndexLostError",
    "mask_credentials",
]
