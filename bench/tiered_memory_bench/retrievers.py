"""Retrieval systems compared on LoCoMo: tiered-memory's Tier 3 and its peers.

Each system implements the tiny :class:`Retriever` protocol: ``index(conversation)`` stores
every turn, ``search(query, k)`` returns dia_ids best first. The replay (``tiered_memory_bench.locomo``)
and the scoring (``tiered_memory_bench.retrieval``) are shared; only storage and search differ here.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .common import CachingEmbedder
from .locomo import Conversation, Question, Turn

#: Words dropped by the BM25 tokenizer (a short English list: articles, pronouns, auxiliaries).
_STOPWORDS_TEXT = """
    a an the and or but if then else of to in on at by for with about from into over after
    before under again further once is am are was were be been being have has had having do does
    did doing i me my myself we our ours you your yours he him his she her hers it its they them
    their what which who whom this that these those as so than too very can will just should now
    not no nor only own same s t don isn wasn also there here when where why how all any both
    each few more most other some such up down out off
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")


def bm25_tokens(text: str) -> list[str]:
    """Lowercase word tokens without stopwords."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class Retriever(Protocol):
    name: str

    def index(self, conversation: Conversation) -> None: ...

    def search(self, query: str, k: int) -> list[str]: ...

    def close(self) -> None: ...


RetrieverFactory = Callable[[Path, CachingEmbedder], Retriever]


class TieredMemoryRetriever:
    """Tier 3 of tiered-memory: one TieredMemory per LoCoMo session, one user per conversation."""

    name = "tiered-memory"

    def __init__(
        self, workdir: Path, embedder: CachingEmbedder, summarizer: Any = "extractive"
    ) -> None:
        """``summarizer="extractive"``: the offline ExtractiveSummarizer; None: the core default."""
        from tiered_memory import ExtractiveSummarizer, MemoryConfig, TieredMemory

        self._cls = TieredMemory
        self._config = MemoryConfig()
        self._summarizer = ExtractiveSummarizer() if summarizer == "extractive" else summarizer
        self.workdir = workdir
        self.embedder = embedder
        self.memory: Any = None

    def content(self, turn: Turn) -> str:
        """What is stored as the message content (the speaker goes in ``name``)."""
        return turn.text

    @staticmethod
    def role(turn: Turn) -> str:
        """The message role: LongMemEval's own (user / assistant); LoCoMo's speakers are two
        people, both stored as users under their names."""
        return "user" if turn.named else turn.chat_role

    def index(self, conversation: Conversation) -> None:
        from tiered_memory import Message

        for number, turns in sorted(conversation.sessions.items()):
            if self.memory is not None:
                self.memory.close()
            self.memory = self._cls(
                session_id=f"session_{number}",
                user_id=conversation.sample_id,
                path=str(self.workdir),
                config=self._config,
                summarizer=self._summarizer,
                embedder=self.embedder,
            )
            self.memory.add_messages(
                [
                    Message(
                        role=self.role(turn),
                        content=self.content(turn),
                        name=turn.speaker if turn.named else None,
                        id=turn.message_id,
                        created_at=turn.created_at,
                        metadata={"dia_id": turn.dia_id},
                    )
                    for turn in turns
                ]
            )

    def search(self, query: str, k: int) -> list[str]:
        hits = self.memory.recall(query, k=k, exclude_window=False)
        # a fact (issue 16) counts as the turn it came from
        ids = [(hit.source_message_id or hit.message_id).split(":", 1)[-1] for hit in hits]
        return list(dict.fromkeys(ids))

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
            self.memory = None


class TieredMemoryNamedRetriever(TieredMemoryRetriever):
    """tiered-memory with the speaker written into the content ("Name: text"), as the peers
    index it: shows what Tier 3 gains when the indexed text carries the speaker's name."""

    name = "tiered-memory-named"

    def content(self, turn: Turn) -> str:
        return turn.document


class BM25Retriever:
    """rank-bm25 (Okapi) over single turns, lowercase words without stopwords."""

    name = "bm25"

    def __init__(self, workdir: Path, embedder: CachingEmbedder) -> None:
        from rank_bm25 import BM25Okapi

        self._cls = BM25Okapi
        self.index_: Any = None
        self.ids: list[str] = []

    def index(self, conversation: Conversation) -> None:
        turns = conversation.turns
        self.ids = [t.dia_id for t in turns]
        # an empty token list would divide by zero in rank-bm25's idf: keep a placeholder
        self.index_ = self._cls([bm25_tokens(t.document) or ["_"] for t in turns])

    def search(self, query: str, k: int) -> list[str]:
        scores = self.index_.get_scores(bm25_tokens(query))
        order = sorted(range(len(self.ids)), key=lambda i: (-scores[i], i))
        return [self.ids[i] for i in order[:k]]

    def close(self) -> None:
        self.index_ = None


class ChromaDenseRetriever:
    """One turn per document in an embedded Chroma collection, precomputed embeddings.

    What LangChain's ``VectorStoreRetrieverMemory`` over ``Chroma`` does: one document per
    saved exchange, nearest neighbours of the query embedding.
    """

    name = "chroma-dense"

    def __init__(self, workdir: Path, embedder: CachingEmbedder) -> None:
        import chromadb
        from chromadb.config import Settings

        self.client = chromadb.PersistentClient(
            path=str(workdir / "chroma-dense"), settings=Settings(anonymized_telemetry=False)
        )
        self.embedder = embedder
        self.collection: Any = None

    def index(self, conversation: Conversation) -> None:
        self.collection = self.client.get_or_create_collection(
            name=f"dense-{conversation.sample_id}", embedding_function=None
        )
        turns = conversation.turns
        for start in range(0, len(turns), 500):
            batch = turns[start : start + 500]
            docs = [t.document for t in batch]
            self.collection.add(
                ids=[t.message_id for t in batch],
                documents=docs,
                embeddings=self.embedder.embed_documents(docs),
                metadatas=[{"dia_id": t.dia_id, "session": t.session} for t in batch],
            )

    def search(self, query: str, k: int) -> list[str]:
        result = self.collection.query(
            query_embeddings=[self.embedder.embed_query(query)],
            n_results=min(k, self.collection.count()),
            include=["metadatas"],
        )
        return [str(m["dia_id"]) for m in result["metadatas"][0]]

    def close(self) -> None:
        self.collection = None


def llamaindex_embedding(embedder: CachingEmbedder) -> Any:
    """The shared embedder as a LlamaIndex ``BaseEmbedding``."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr

    class SharedEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner: CachingEmbedder) -> None:
            super().__init__(model_name=inner.name, embed_batch_size=64)
            self._embedder = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_query(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_query(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed_documents([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed_documents(texts)

    return SharedEmbedding(embedder)


def text_simple_vector_store(on_add: Callable[[Any], None] | None = None) -> Any:
    """LlamaIndex's in-memory ``SimpleVectorStore`` that also keeps the nodes' text.

    ``VectorMemoryBlock`` needs a store with ``stores_text``; the stock SimpleVectorStore keeps
    only vectors. Ranking is SimpleVectorStore's own (exact cosine over every vector).
    """
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.vector_stores import SimpleVectorStore

    class TextSimpleVectorStore(SimpleVectorStore):
        stores_text: bool = True
        _nodes: dict[str, Any] = PrivateAttr(default_factory=dict)

        def add(self, nodes: Sequence[Any], **kwargs: Any) -> list[str]:
            ids = super().add(nodes, **kwargs)
            for node in nodes:
                self._nodes[node.node_id] = node
                if on_add is not None:
                    on_add(node)
            return ids

        def query(self, query: Any, **kwargs: Any) -> Any:
            result = super().query(query, **kwargs)
            result.nodes = [self._nodes[i] for i in result.ids or []]
            return result

    return TextSimpleVectorStore()


@dataclass
class LlamaIndexBlockSettings:
    """How the LlamaIndex ``Memory`` around the block is sized (same budget as our window)."""

    window_tokens: int = 2000
    chat_history_token_ratio: float = 0.7
    flush_ratio: float = 0.1  # Memory's own default token_flush_size is 10% of token_limit

    @property
    def token_limit(self) -> int:
        return round(self.window_tokens / self.chat_history_token_ratio)

    @property
    def flush_tokens(self) -> int:
        return max(1, int(self.token_limit * self.flush_ratio))


class LlamaIndexVectorBlockRetriever:
    """LlamaIndex ``Memory`` + ``VectorMemoryBlock`` (llama_index.core.memory).

    Turns go through ``Memory.put`` (LlamaIndex's default tokenizer); the waterfall flushes the oldest messages to the
    block, which stores ONE node per flushed batch. At the end of each session the messages still
    in the chat history are flushed too, so every turn is searchable as in the other systems.
    ``search`` asks the block for ``k`` nodes and flattens their dia_ids, best node first.
    """

    name = "llamaindex-vector-block"

    def __init__(
        self,
        workdir: Path,
        embedder: CachingEmbedder,
        settings: LlamaIndexBlockSettings | None = None,
    ) -> None:
        from llama_index.core.memory import VectorMemoryBlock
        from llama_index.core.postprocessor.types import BaseNodePostprocessor

        self.settings = settings or LlamaIndexBlockSettings()
        self._pending: deque[str] = deque()
        self.node_dia_ids: dict[str, list[str]] = {}
        self.captured: list[Any] = []
        captured = self.captured

        class Capture(BaseNodePostprocessor):
            """Records the ranked nodes the block retrieved (and passes them on unchanged)."""

            def _postprocess_nodes(self, nodes: list[Any], query_bundle: Any = None) -> list[Any]:
                captured[:] = list(nodes)
                return nodes

        self.block = VectorMemoryBlock(
            vector_store=text_simple_vector_store(self._on_node),
            embed_model=llamaindex_embedding(embedder),
            node_postprocessors=[Capture()],
        )

    def _on_node(self, node: Any) -> None:
        count = node.get_content().count("<message role=")
        self.node_dia_ids[node.node_id] = [self._pending.popleft() for _ in range(count)]

    def index(self, conversation: Conversation) -> None:
        from llama_index.core.async_utils import asyncio_run
        from llama_index.core.base.llms.types import ChatMessage
        from llama_index.core.memory import Memory
        from llama_index.core.storage.chat_store.sql import MessageStatus

        s = self.settings
        for number, turns in sorted(conversation.sessions.items()):
            memory = Memory.from_defaults(
                session_id=f"{conversation.sample_id}-session_{number}",
                token_limit=s.token_limit,
                chat_history_token_ratio=s.chat_history_token_ratio,
                token_flush_size=s.flush_tokens,
                memory_blocks=[self.block],
            )
            for turn in turns:
                self._pending.append(turn.dia_id)
                memory.put(ChatMessage(role=turn.chat_role, content=turn.document))
            tail = memory.get_all(status=MessageStatus.ACTIVE)
            for batch in _token_batches(tail, s.flush_tokens, memory._estimate_token_count):
                asyncio_run(
                    self.block.aput(
                        batch, from_short_term_memory=True, session_id=memory.session_id
                    )
                )
        if self._pending:
            raise RuntimeError(f"{len(self._pending)} turns never reached the vector block")

    def search(self, query: str, k: int) -> list[str]:
        from llama_index.core.async_utils import asyncio_run
        from llama_index.core.base.llms.types import ChatMessage

        self.block.similarity_top_k = k
        self.captured.clear()
        asyncio_run(self.block.aget(messages=[ChatMessage(role="user", content=query)]))
        ranked: list[str] = []
        for node in self.captured:
            ranked.extend(self.node_dia_ids[node.node.node_id])
        return list(dict.fromkeys(ranked))[:k]

    def close(self) -> None:
        self.block.vector_store.clear()


def _token_batches(items: Sequence[Any], size: int, count: Callable[[Any], int]) -> list[list[Any]]:
    """Consecutive batches of at least ``size`` tokens (the last may be smaller), like a flush."""
    batches: list[list[Any]] = []
    current: list[Any] = []
    tokens = 0
    for item in items:
        current.append(item)
        tokens += count(item)
        if tokens >= size:
            batches.append(current)
            current, tokens = [], 0
    if current:
        batches.append(current)
    return batches


def mem0_memory(workdir: Path, embedder: CachingEmbedder, collection: str) -> Any:
    """A Mem0 OSS ``Memory``: shared embedder via the LangChain provider, Chroma in ``workdir``.

    Telemetry is switched off before mem0 is imported. The LLM is a fake that is never called:
    every add uses ``infer=False`` (raw messages stored, no fact extraction).
    """
    # also set, with MEM0_DIR, by tiered_memory_bench/__init__.py
    os.environ["MEM0_TELEMETRY"] = "False"
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from mem0 import Memory
    from mem0.configs.base import MemoryConfig as Mem0Config

    class SharedEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            # mem0 embeds stored memories through embed_query: serve the cached turn vectors
            return embedder.lookup(text)

    dims = len(embedder.embed_query("dimension probe"))
    config = Mem0Config(
        embedder={
            "provider": "langchain",
            "config": {"model": SharedEmbeddings(), "embedding_dims": dims},
        },
        llm={"provider": "langchain", "config": {"model": FakeListChatModel(responses=["{}"])}},
        vector_store={
            "provider": "chroma",
            "config": {"collection_name": collection, "path": str(workdir / "mem0-chroma")},
        },
        history_db_path=str(workdir / f"{collection}-history.db"),
    )
    return Memory(config)


class Mem0Retriever:
    """Mem0 OSS with ``infer=False``: one raw memory per turn, Chroma vector store."""

    name = "mem0"

    def __init__(self, workdir: Path, embedder: CachingEmbedder) -> None:
        self.workdir = workdir
        self.embedder = embedder
        self.memory: Any = None
        self.user_id = ""

    def index(self, conversation: Conversation) -> None:
        self.user_id = conversation.sample_id
        self.memory = mem0_memory(self.workdir, self.embedder, f"mem0-{conversation.sample_id}")
        turns: list[Turn] = conversation.turns
        self.embedder.warm([t.document for t in turns], desc="mem0 vectors")
        for turn in turns:
            self.memory.add(
                [{"role": "user", "content": turn.document, "name": turn.speaker}],
                user_id=self.user_id,
                run_id=f"session_{turn.session}",
                metadata={"dia_id": turn.dia_id},
                infer=False,
            )

    def search(self, query: str, k: int) -> list[str]:
        found = self.memory.search(query, top_k=k, filters={"user_id": self.user_id}, threshold=0.0)
        return [str(item["metadata"]["dia_id"]) for item in found["results"]]

    def close(self) -> None:
        self.memory = None


class TieredMemoryFactsRetriever(TieredMemoryRetriever):
    """tiered-memory with issue 16's facts and time: turns replayed with their chat roles, each
    dataset session compacted once stored (facts ride on compaction), the question asked at its
    date (``now=``: LongMemEval's question_date). A fact hit counts as the turn it came from."""

    name = "tm-facts"
    facts = True

    def __init__(self, workdir: Path, embedder: CachingEmbedder) -> None:
        super().__init__(workdir, embedder)
        from tiered_memory import MemoryConfig

        self._config = MemoryConfig(facts=self.facts, compaction="inline")

    def index(self, conversation: Conversation) -> None:
        from tiered_memory import Message

        for number, turns in sorted(conversation.sessions.items()):
            if self.memory is not None:
                self.memory.close()
            self.memory = self._cls(
                session_id=f"session_{number}", user_id=conversation.sample_id,
                path=str(self.workdir), config=self._config, summarizer=self._summarizer,
                embedder=self.embedder,
            )  # fmt: skip
            self.adjust(self.memory)
            self.memory.add_messages(
                [
                    Message(
                        role=turn.chat_role, content=self.content(turn),
                        name=turn.speaker if turn.named else None, id=turn.message_id,
                        created_at=turn.created_at, metadata={"dia_id": turn.dia_id},
                    )
                    for turn in turns
                ]
            )  # fmt: skip
            self.memory.compact()

    def adjust(self, memory: Any) -> None:
        """Hook of the variants (the before-issue-16 one switches the time ranking off)."""

    def search_question(self, question: Question, k: int) -> list[str]:
        now = question.asked_at if self.facts else None
        hits = self.memory.recall(question.question, k=k, exclude_window=False, now=now)
        ids = [(h.source_message_id or h.message_id).split(":", 1)[-1] for h in hits]
        return list(dict.fromkeys(ids))


class TieredMemoryBeforeFactsRetriever(TieredMemoryFactsRetriever):
    """The same replay as ``tm-facts`` without issue 16's facts and time-aware ranking: the
    before of its before/after."""

    name = "tm-before-facts"
    facts = False

    def adjust(self, memory: Any) -> None:
        from tiered_memory.recall.timeline import TimelineWeights

        memory.tier3.timeline = TimelineWeights(time=0.0, stale=0.0, stale_source=0.0)


#: name -> (factory, the package it needs: a missing package is a recorded skip)
def tiered_memory_ablation(**weights: Any) -> RetrieverFactory:
    """tiered-memory with some recall signals switched off (``RankingWeights`` fields)."""

    def factory(workdir: Path, embedder: CachingEmbedder) -> Retriever:
        import functools

        from tiered_memory import RankingWeights, TieredMemory

        retriever = TieredMemoryRetriever(workdir, embedder)
        retriever._cls = functools.partial(TieredMemory, ranking=RankingWeights(**weights))  # type: ignore[assignment,arg-type]
        return retriever

    return factory


#: ``--ablation``: what each recall signal adds, each row one more signal than the one before.
ABLATIONS: dict[str, tuple[RetrieverFactory, str]] = {
    "tm-dense-only": (
        tiered_memory_ablation(dense=1.0, neighbour=0.0, session=0.0),
        "tiered_memory",
    ),
    "tm-bm25-only": (
        tiered_memory_ablation(dense=0.0, neighbour=0.0, session=0.0),
        "tiered_memory",
    ),
    "tm-fusion": (tiered_memory_ablation(neighbour=0.0, session=0.0), "tiered_memory"),
    "tm-fusion+neighbours": (tiered_memory_ablation(session=0.0), "tiered_memory"),
    # the default but for one rule: an assistant's reply takes its neighbours' share too
    "tm-replies-lifted": (tiered_memory_ablation(self_contained_roles=()), "tiered_memory"),
}

RETRIEVERS: dict[str, tuple[RetrieverFactory, str]] = {
    "tiered-memory": (TieredMemoryRetriever, "tiered_memory"),
    "tiered-memory-named": (TieredMemoryNamedRetriever, "tiered_memory"),
    "bm25": (BM25Retriever, "rank_bm25"),
    "chroma-dense": (ChromaDenseRetriever, "chromadb"),
    "llamaindex-vector-block": (LlamaIndexVectorBlockRetriever, "llama_index.core"),
    "mem0": (Mem0Retriever, "mem0"),
}
RETRIEVERS.update(ABLATIONS)
RETRIEVERS["tm-facts"] = (TieredMemoryFactsRetriever, "tiered_memory")
RETRIEVERS["tm-before-facts"] = (TieredMemoryBeforeFactsRetriever, "tiered_memory")
