"""TieredMemoryRetriever: LangChain's standard retriever suite, provenance, windows and users."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_tiered_memory import TieredMemoryMiddleware, TieredMemoryRetriever
from tiered_memory import HashEmbedder, InvalidMessageError, MemoryConfig, TieredMemory

_STANDARD_DIR = tempfile.mkdtemp(prefix="tm-lc-retriever-")
_FACTS = [
    "My dog is called Biscuit.",
    "Biscuit the dog loves the beach.",
    "My other dog, a puppy, is called Pepper.",
    "The dog food brand I buy is Acme.",
    "I walk my dog every morning at seven.",
]


def _memory(session_id: str, user_id: str = "kha", path: Any = _STANDARD_DIR) -> TieredMemory:
    return TieredMemory(
        session_id=session_id,
        user_id=user_id,
        path=path,
        config=MemoryConfig(window_tokens=64, summary_tokens=64, compaction="inline"),
        embedder=HashEmbedder(),
    )


def _standard_reader() -> TieredMemory:
    writer = _memory("facts")
    if not writer.history():
        writer.add_messages([{"role": "user", "content": fact} for fact in _FACTS])
        writer.close()
    return _memory("reader")


class TestRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return TieredMemoryRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": _standard_reader()}

    @property
    def retriever_query_example(self) -> str:
        return "what is my dog called?"


def _documents(tmp_path: Any) -> tuple[TieredMemory, list[Document]]:
    writer = _memory("monday", path=tmp_path)
    writer.add("user", "My dog is called Biscuit.")
    writer.close()
    reader = _memory("tuesday", path=tmp_path)
    return reader, TieredMemoryRetriever(memory=reader, k=3).invoke("what is my dog called?")


def test_documents_carry_text_and_provenance(tmp_path: Any) -> None:
    _, documents = _documents(tmp_path)
    top = documents[0]
    assert top.page_content == "My dog is called Biscuit."
    assert top.metadata["session_id"] == "monday" and top.metadata["role"] == "user"
    assert top.metadata["user_id"] == "kha" and top.id == top.metadata["message_id"]
    assert type(top.metadata["score"]) is float
    datetime.fromisoformat(top.metadata["created_at"])


def test_another_users_messages_are_never_retrieved(tmp_path: Any) -> None:
    _memory("monday", user_id="ann", path=tmp_path).add("user", "My dog is called Rex.")
    _, documents = _documents(tmp_path)
    assert documents and all("Rex" not in d.page_content for d in documents)


def test_the_readers_own_window_is_left_out(tmp_path: Any) -> None:
    reader = _memory("s1", path=tmp_path)
    reader.add("user", "My dog is called Biscuit.")
    assert TieredMemoryRetriever(memory=reader).invoke("dog") == []
    assert TieredMemoryRetriever(memory=_memory("s2", path=tmp_path)).invoke("dog")


def test_date_range_per_call_and_by_default(tmp_path: Any) -> None:
    _, documents = _documents(tmp_path)
    assert documents
    reader = _memory("tuesday", path=tmp_path)
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    assert TieredMemoryRetriever(memory=reader).invoke("dog", since=tomorrow) == []
    assert TieredMemoryRetriever(memory=reader, since=tomorrow).invoke("dog") == []
    assert TieredMemoryRetriever(memory=reader, until=tomorrow).invoke("dog")
    with pytest.raises(InvalidMessageError):
        TieredMemoryRetriever(memory=reader).invoke("dog", since="last week")


async def test_async_matches_sync(tmp_path: Any) -> None:
    reader, documents = _documents(tmp_path)
    retriever = TieredMemoryRetriever(memory=reader, k=3)
    assert [d.id for d in await retriever.ainvoke("what is my dog called?")] == [
        d.id for d in documents
    ]


def test_it_follows_the_middlewares_run_defaults(tmp_path: Any) -> None:
    _memory("monday", path=tmp_path).add("user", "My dog is called Biscuit.")
    middleware = TieredMemoryMiddleware(
        path=tmp_path,
        config=MemoryConfig(window_tokens=64, summary_tokens=64, compaction="inline"),
        embeddings=HashEmbedder(),
        user_id="kha",
        session_id="tuesday",
    )
    documents = TieredMemoryRetriever(memory=middleware).invoke("dog")
    assert documents[0].page_content == "My dog is called Biscuit."


def test_a_wrong_memory_is_refused_at_creation() -> None:
    with pytest.raises(ValueError, match="pass a TieredMemory"):
        TieredMemoryRetriever(memory="kha")
