"""A user's vectors remember the embedder that made them: a memory with another embedder is
refused before it mixes two models' vectors (which do not compare: recall would silently rank
noise), its messages wait unindexed and are never lost, forget still works, and
``rebuild_vectors()`` moves the user to the new embedder. Other users are not touched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import FakeEmbeddings
from llama_index.core.embeddings import MockEmbedding

from tiered_memory import (
    ConfigError,
    EmbedderChangedError,
    HashEmbedder,
    MemoryConfig,
    Resources,
    TieredMemory,
)
from tiered_memory.embeddings import as_embedder, embedder_identity
from tiered_memory.embeddings.minilm import MiniLMEmbedder

SETTINGS = MemoryConfig(compaction="inline", window_tokens=40, summary_tokens=60)


def _memory(path: Path, resources: Resources, embedder: Any, user_id: str = "kha") -> TieredMemory:
    return TieredMemory("s1", user_id, path, SETTINGS, embedder=embedder, resources=resources)


def _unindexed(mem: TieredMemory) -> list[Any]:
    return mem.store.unindexed(mem.user_id)  # type: ignore[attr-defined,no-any-return]


def _seed(path: Path, user_id: str = "kha") -> None:
    with Resources() as resources:
        mem = _memory(path, resources, HashEmbedder(256), user_id)
        mem.add("user", "My API key is 123-ALPHA.")
        for n in range(6):
            mem.add("user", f"Note {n}: the tram to district {n} was late again.")
        mem.flush()
        assert _unindexed(mem) == []


def test_another_embedder_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    _seed(tmp_path)
    with Resources() as resources:
        mem = _memory(tmp_path, resources, _other_model())  # same size: only the record tells
        with pytest.raises(EmbedderChangedError, match="hash-256"):
            mem.recall("What was my API key?")
        assert issubclass(EmbedderChangedError, ConfigError)
        new = mem.add("user", "And my door code is 5512.")
        mem.flush()  # refused (logged): the message waits, it is not lost
        assert [item.message.id for _, item in _unindexed(mem)] == [new.id]
        assert new.id in [m.id for m in mem.history()]


def test_rebuild_vectors_moves_the_user_to_the_new_embedder(tmp_path: Path) -> None:
    _seed(tmp_path)
    _seed(tmp_path, "ana")
    with Resources() as resources:
        mem = _memory(tmp_path, resources, HashEmbedder(128))
        mem.add("user", "And my door code is 5512.")
        documents = mem.store.document_count("kha")  # type: ignore[attr-defined]
        assert mem.rebuild_vectors() == documents
        mem.flush()
        assert _unindexed(mem) == []
        assert mem.long_term.count("kha") == documents + 1
        assert any("123-ALPHA" in h.text for h in mem.recall("my API key", exclude_window=False))
        assert any("5512" in h.text for h in mem.recall("door code", exclude_window=False))
        with pytest.raises(EmbedderChangedError, match="hash-128"):  # the old one, now
            _memory(tmp_path, resources, HashEmbedder(256)).recall("my API key")
        ana = _memory(tmp_path, resources, HashEmbedder(256), "ana")  # untouched
        assert any("123-ALPHA" in h.text for h in ana.recall("my API key", exclude_window=False))


def test_forget_works_with_a_changed_embedder(tmp_path: Path) -> None:
    _seed(tmp_path)
    with Resources() as resources:
        mem = _memory(tmp_path, resources, HashEmbedder(128))
        secret = next(m for m in mem.history() if "123-ALPHA" in m.content)
        before = mem.long_term.count("kha")
        assert mem.forget(message_id=secret.id) == 1
        assert mem.long_term.count("kha") < before
        assert all(secret.id != m.id for m in mem.history())


def test_embedders_that_do_not_name_their_model_are_not_checked(tmp_path: Path) -> None:
    with Resources() as resources:
        mem = _memory(tmp_path, resources, FakeEmbeddings(size=256))
        mem.add("user", "Unnamed vectors: my bike is red.")
        mem.flush()
        assert mem.long_term.embedder_of("kha") is None
        named = _memory(tmp_path, resources, HashEmbedder(256))  # adopts the collection
        assert named.recall("my bike", exclude_window=False) is not None
        assert named.long_term.embedder_of("kha") == "hash-256"


def test_embedder_identity() -> None:
    assert embedder_identity(HashEmbedder(64)) == "hash-64"
    assert embedder_identity(MiniLMEmbedder()) == "all-MiniLM-L6-v2-int8"
    assert embedder_identity(MiniLMEmbedder(model_path="/m/l3.onnx")) == "onnx:/m/l3.onnx"
    assert embedder_identity(FakeEmbeddings(size=8)) is None  # says nothing of its model
    assert embedder_identity(as_embedder(MockEmbedding(embed_dim=8))) is None  # "unknown"
    assert embedder_identity(as_embedder(MockEmbedding(embed_dim=8, model_name="bge-s"))) == "bge-s"

    class OpenAILike:
        model = "text-embedding-3-small"

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0]

    assert embedder_identity(as_embedder(OpenAILike())) == "text-embedding-3-small"

    class ChromaFunction:
        def name(self) -> str:  # Chroma's EmbeddingFunction.name is a method, not a name
            return "default"

        def __call__(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] for _ in texts]

    assert embedder_identity(as_embedder(ChromaFunction())) is None


def _other_model(dimensions: int = 256) -> HashEmbedder:
    """Another model with vectors of the same size (Chroma's dimension check cannot tell)."""
    embedder = HashEmbedder(dimensions)
    embedder.name = f"other-model-{dimensions}"
    return embedder


def test_a_process_with_the_old_embedder_stops_when_another_rebuilt(tmp_path: Path) -> None:
    _seed(tmp_path)
    with Resources() as first, Resources() as second:
        old = _memory(tmp_path, first, HashEmbedder(256))
        assert old.recall("my API key", exclude_window=False)  # its handle is open
        new = _memory(tmp_path, second, _other_model())
        new.rebuild_vectors()
        held = new.long_term.count("kha")
        late = old.add("user", "A late message from the old worker.")
        old.flush()  # refused (logged), not written with the old model
        assert [item.message.id for _, item in _unindexed(old)] == [late.id]
        assert new.long_term.count("kha") == held
        with pytest.raises(EmbedderChangedError):
            old.recall("my API key")
        new.flush()  # the new embedder indexes the late message
        assert any("late message" in h.text for h in new.recall("late", exclude_window=False))


def test_each_user_keeps_their_own_embedder_on_one_path(tmp_path: Path) -> None:
    _seed(tmp_path, "kha")  # hash-256
    with Resources() as resources:
        ana = _memory(tmp_path, resources, _other_model(), "ana")
        ana.add("user", "My bike lock code is 8812.")
        ana.flush()
        assert _unindexed(ana) == []
        assert ana.long_term.embedder_of("ana") == "other-model-256"
        assert ana.long_term.embedder_of("kha") == "hash-256"
        kha = _memory(tmp_path, resources, HashEmbedder(256), "kha")
        assert any("123-ALPHA" in h.text for h in kha.recall("my API key", exclude_window=False))
        assert any("8812" in h.text for h in ana.recall("bike lock", exclude_window=False))


def test_refusal_and_rebuild_on_every_backend(make_memory: Callable[..., TieredMemory]) -> None:
    """The same through the shared fixture: in the server pass, PostgreSQL and a Chroma server
    (collection metadata written over HTTP, a handle re-opened after the rebuild)."""
    old = make_memory("s1", "kha", embedder=HashEmbedder(256))
    old.add("user", "My API key is 123-ALPHA.")
    old.flush()
    new = make_memory("s2", "kha", embedder=_other_model())
    with pytest.raises(EmbedderChangedError):
        new.recall("my API key")
    assert new.rebuild_vectors() >= 1
    assert any("123-ALPHA" in h.text for h in new.recall("my API key"))
    with pytest.raises(EmbedderChangedError):
        old.recall("my API key")
