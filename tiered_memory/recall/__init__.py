"""Tier 3: long-term recall — records, the Chroma store, BM25, fused ranking, the recall tool."""

from __future__ import annotations

from .chroma import ChromaLongTermStore, LongTermStore
from .lexical import IndexedDoc, LexicalIndex
from .ranking import RankingWeights, hybrid_rank
from .records import (
    LongTermRecord,
    RecallHit,
    RecallQuery,
    StoredHit,
    hit_from_metadata,
    record_key,
    record_metadata,
)
from .tool import (
    RECALL_ARGUMENTS,
    RECALL_DESCRIPTION,
    RECALL_HEADER,
    format_recall_hits,
    parse_when,
)

__all__ = [
    "RECALL_ARGUMENTS",
    "RECALL_DESCRIPTION",
    "RECALL_HEADER",
    "ChromaLongTermStore",
    "IndexedDoc",
    "LexicalIndex",
    "LongTermRecord",
    "LongTermStore",
    "RankingWeights",
    "RecallHit",
    "RecallQuery",
    "StoredHit",
    "format_recall_hits",
    "hit_from_metadata",
    "hybrid_rank",
    "parse_when",
    "record_key",
    "record_metadata",
]
