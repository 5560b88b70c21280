"""Tier-3 embedders: the Embedder protocol, the embedded offline default, framework wrappers.

Any LangChain ``Embeddings``, LlamaIndex ``BaseEmbedding`` or Chroma ``EmbeddingFunction`` plugs
in through :func:`as_embedder`, by duck typing: the core imports none of those frameworks.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError, EmbedderError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. Same method names as LangChain's ``Embeddings``."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


async def aembed_documents(embedder: Embedder, texts: list[str]) -> list[list[float]]:
    """Native async when the embedder has it, else the sync call in a worker thread."""
    native = getattr(embedder, "aembed_documents", None)
    if native is not None:
        return list(await native(texts))
    return await asyncio.to_thread(embedder.embed_documents, texts)


async def aembed_query(embedder: Embedder, text: str) -> list[float]:
    native = getattr(embedder, "aembed_query", None)
    if native is not None:
        return list(await native(text))
    return await asyncio.to_thread(embedder.embed_query, text)


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder: no model, microseconds a text.

    For tests and overhead benchmarks, where semantic quality does not matter but speed does.
    """

    _WORD = re.compile(r"\w+", re.UNICODE)

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions < 8:
            raise ConfigError("HashEmbedder dimensions must be >= 8")
        self.dimensions = dimensions
        self.name = f"hash-{dimensions}"

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in self._WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


class _LlamaIndexEmbedding:
    """Wraps a LlamaIndex ``BaseEmbedding`` (get_text_embedding_batch / get_query_embedding)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in self.model.get_text_embedding_batch(texts)]

    def embed_query(self, text: str) -> list[float]:
        return list(self.model.get_query_embedding(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in await self.model.aget_text_embedding_batch(texts)]

    async def aembed_query(self, text: str) -> list[float]:
        return list(await self.model.aget_query_embedding(text))


class _ChromaEmbeddingFunction:
    """Wraps a Chroma ``EmbeddingFunction`` (callable on a list of documents)."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in v] for v in self.function(texts)]

    def embed_query(self, text: str) -> list[float]:
        embed_query = getattr(self.function, "embed_query", None)
        if embed_query is not None:
            result = embed_query([text])
            return [float(x) for x in result[0]]
        return self.embed_documents([text])[0]


def as_embedder(obj: Any | None) -> Embedder:
    """Adapt ``obj`` to the :class:`Embedder` protocol; ``None`` gives the embedded default."""
    if obj is None:
        return default_embedder()
    if hasattr(obj, "embed_documents") and hasattr(obj, "embed_query"):
        return obj  # ours, or a LangChain Embeddings: same protocol
    if hasattr(obj, "get_text_embedding_batch") and hasattr(obj, "get_query_embedding"):
        return _LlamaIndexEmbedding(obj)
    if callable(obj):
        return _ChromaEmbeddingFunction(obj)
    raise ConfigError(
        f"{type(obj).__name__} is not an embedder: pass an object with embed_documents/embed_query "
        "(LangChain Embeddings), a LlamaIndex BaseEmbedding, or a Chroma EmbeddingFunction"
    )


def embedder_identity(embedder: object) -> str | None:
    """The model that makes ``embedder``'s vectors, when it says: its ``name`` (the bundled
    embedders), or the ``model`` / ``model_name`` of a LangChain, LlamaIndex or Chroma model
    ("text-embedding-3-small"). None when it does not say."""
    inner = (
        getattr(embedder, "model", None)
        if isinstance(embedder, _LlamaIndexEmbedding)
        else (
            getattr(embedder, "function", None)
            if isinstance(embedder, _ChromaEmbeddingFunction)
            else embedder
        )
    )
    for attribute in ("name", "model", "model_name"):
        value = getattr(inner, attribute, None)
        if isinstance(value, str) and value.strip() and value.strip() != "unknown":
            return value.strip()  # (LlamaIndex says "unknown" of a model it cannot name)
    return None


def check_vectors(vectors: Sequence[Sequence[float]], expected: int) -> list[list[float]]:
    """Validate the embedder's output shape; raise EmbedderError with the reason."""
    if len(vectors) != expected:
        raise EmbedderError(f"embedder returned {len(vectors)} vectors for {expected} texts")
    out = [list(map(float, v)) for v in vectors]
    if out and any(len(v) != len(out[0]) or not v for v in out):
        raise EmbedderError("embedder returned vectors of different or zero length")
    return out


def default_embedder() -> Embedder:
    """The embedded offline default: all-MiniLM-L6-v2 (int8 ONNX), shared per process."""
    from .minilm import shared_minilm_embedder

    return shared_minilm_embedder()
