"""tiered-memory: a window, a running summary and long-term recall for LLM chat apps."""

from __future__ import annotations

import logging

from .config import MemoryConfig
from .embeddings import Embedder, HashEmbedder, as_embedder, default_embedder
from .errors import (
    ConfigError,
    CredentialMaskingFilter,
    EmbedderChangedError,
    EmbedderError,
    InvalidMessageError,
    StoreError,
    SummarizerError,
    TieredMemoryError,
    VectorIndexLostError,
)
from .memory import MemoryStats, RecallFilters, TieredMemory
from .messages import Message, ToolCall
from .recall import (
    ChromaLongTermStore,
    LongTermStore,
    RankingWeights,
    RecallHit,
    format_recall_hits,
)
from .resources import Resources, default_resources
from .store import SessionStore, SqlSessionStore
from .summary import (
    SUMMARY_PREFIX,
    ExtractiveSummarizer,
    Summarizer,
    SummaryRequest,
    build_summary_prompt,
    render_transcript,
)
from .tokens import TokenCounter, token_counter

for _name in ("tiered_memory", "tiered_memory.tokens"):
    logging.getLogger(_name).addFilter(CredentialMaskingFilter())
logging.getLogger("tiered_memory").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "SUMMARY_PREFIX",
    "ChromaLongTermStore",
    "ConfigError",
    "Embedder",
    "EmbedderChangedError",
    "EmbedderError",
    "ExtractiveSummarizer",
    "HashEmbedder",
    "InvalidMessageError",
    "LongTermStore",
    "MemoryConfig",
    "MemoryStats",
    "Message",
    "RankingWeights",
    "RecallFilters",
    "RecallHit",
    "Resources",
    "SessionStore",
    "SqlSessionStore",
    "StoreError",
    "Summarizer",
    "SummarizerError",
    "SummaryRequest",
    "TieredMemory",
    "TieredMemoryError",
    "TokenCounter",
    "ToolCall",
    "VectorIndexLostError",
    "__version__",
    "as_embedder",
    "build_summary_prompt",
    "default_embedder",
    "default_resources",
    "format_recall_hits",
    "render_transcript",
    "token_counter",
]
