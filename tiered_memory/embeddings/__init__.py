"""Tier-3 embedders: the protocol, framework wrappers, the hashing test embedder, bundled MiniLM."""

from __future__ import annotations

from .base import (
    Embedder,
    HashEmbedder,
    aembed_documents,
    aembed_query,
    as_embedder,
    check_vectors,
    default_embedder,
    embedder_identity,
)

__all__ = [
    "Embedder",
    "HashEmbedder",
    "aembed_documents",
    "aembed_query",
    "as_embedder",
    "check_vectors",
    "default_embedder",
    "embedder_identity",
]
