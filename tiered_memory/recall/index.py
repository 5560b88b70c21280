"""Tier 3's one owner: what a message becomes in long-term memory, writing it, searching it.

Written once as step generators (``tiered_memory.steps``): the sync and async API drive the same
code. The session store is the source of truth: it keeps each indexed message's document and its
BM25 postings, written in one transaction, and runs the lexical search; the vector store holds the
embeddings. No process keeps a per-user index, so what one process writes or forgets, every other
process sees on its next recall.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..embeddings import Embedder, check_vectors
from ..facts import Fact, FactBook
from ..messages import Message, clipped
from ..state import StoredDocument, StoredMessage
from ..steps import Call, Embed, Steps
from ..store import LexicalDocument, LexicalSearch, SessionStore
from .chroma import LongTermStore
from .lexical import IndexedDoc, SessionSlots, terms
from .ranking import RankingWeights, hybrid_rank
from .records import LongTermRecord, RecallHit, RecallQuery, record_key
from .timeline import TimelineWeights, timeline_hits
from .tool import (
    MEMORY_WRITE_RESULT_PREFIX,
    MEMORY_WRITE_TOOL_NAMES,
    RECALL_HEADER,
    RECALL_TOOL_NAME,
    format_recall_hits,
)

logger = logging.getLogger("tiered_memory")

INDEX_CHUNK = 256  # messages embedded and upserted together
MAX_DOCUMENT_CHARS = 32_000  # of one message in Tier 3; the embedder reads the first ~25,000
BACKLOG_LIMIT = 100_000
_NO_HITS = format_recall_hits([])


def is_recall_exchange(message: Message) -> bool:
    """A recall (or memory-write) tool result: memory about memory, never indexed again."""
    if message.role == "tool":
        text = message.content.lstrip()
        return (
            message.name == RECALL_TOOL_NAME
            or message.name in MEMORY_WRITE_TOOL_NAMES
            or text.startswith((RECALL_HEADER, _NO_HITS, MEMORY_WRITE_RESULT_PREFIX))
        )
    return False


def document_for(
    session_id: str,
    item: StoredMessage,
    prepare: Callable[[Message, Message | None], Message],
    previous: Message | None = None,
) -> StoredDocument | None:
    """What Tier 3 stores for a message (redacted by ``prepare``), or None for nothing."""
    if is_recall_exchange(item.message):
        return None
    message = prepare(clipped(item.message, MAX_DOCUMENT_CHARS), previous)
    text = message.content
    for call in message.tool_calls:
        if call.name != RECALL_TOOL_NAME and call.name not in MEMORY_WRITE_TOOL_NAMES:
            text += f"\n[called tool {call.name}({call.arguments})]"
    text = text.strip()
    if not text:
        return None
    if message.name:
        text = f"{message.name}: {text}"
    return StoredDocument(
        session_id=session_id, message_id=message.id, seq=item.seq, role=message.role,
        created_at=message.created_at.isoformat(), text=text, name=message.name,
    )  # fmt: skip


def indexed_doc(user_id: str, doc: StoredDocument) -> IndexedDoc:
    created = indexed_created(doc)
    metadata: dict[str, object] = {
        "user_id": user_id, "session_id": doc.session_id, "message_id": doc.message_id,
        "role": doc.role, "created_at": doc.created_at, "created_ts": created.timestamp(),
        "seq": doc.seq,
    }  # fmt: skip
    if doc.name:
        metadata["name"] = doc.name
    return IndexedDoc(record_key(doc.session_id, doc.message_id), doc.text, metadata)


class LongTermIndex:
    """Tier 3 of one user: index what waits, search with hybrid ranking, erase."""

    def __init__(
        self,
        user_id: str,
        store: SessionStore,
        vectors: Callable[[], LongTermStore],
        embedder: Callable[[], Embedder],
        prepare: Callable[[Message, Message | None], Message],
        weights: RankingWeights | None = None,
    ) -> None:
        self.user_id = user_id
        self.store = store
        self._vectors = vectors
        self._embedder = embedder
        self.prepare = prepare
        self.weights = weights or RankingWeights()
        self.facts: FactBook | None = None  # set by TieredMemory when facts are on
        self.timeline: TimelineWeights | None = None  # None: the defaults (ablations set it)

    # --- writing ---------------------------------------------------------------------------

    def index_steps(self, limit: int = BACKLOG_LIMIT) -> Steps[int]:
        """Embed and store the messages of the user that wait for Tier 3 (at most ``limit``,
        in session and seq order); returns how many were done."""
        items = yield Call(self.store.unindexed, (self.user_id, limit))
        done = 0
        for start in range(0, len(items), INDEX_CHUNK):
            chunk = items[start : start + INDEX_CHUNK]
            docs = [
                doc
                for n, (s, item) in enumerate(chunk)
                if (doc := document_for(s, item, self.prepare, _previous(chunk, n))) is not None
            ]
            if docs:
                vectors = yield Embed(self._embedder(), [d.text for d in docs])
                records = self._records(docs, check_vectors(vectors, len(docs)))
                yield Call(self._vectors().upsert, (self.user_id, records))
            keys = [(s, item.message.id) for s, item in chunk]
            yield Call(self.store.mark_indexed, (self.user_id, keys, docs))
            done += len(chunk)
        return done

    def _records(
        self, docs: Sequence[StoredDocument], vectors: list[list[float]]
    ) -> list[LongTermRecord]:
        return [
            LongTermRecord(
                user_id=self.user_id,
                session_id=d.session_id,
                message_id=d.message_id,
                role=d.role,
                text=d.text,
                created_at=indexed_created(d),
                embedding=v,
                name=d.name,
                seq=d.seq,
            )
            for d, v in zip(docs, vectors, strict=True)
        ]

    # --- searching -------------------------------------------------------------------------

    def search_steps(self, request: RecallQuery, excluded: set[str]) -> Steps[list[RecallHit]]:
        """Hybrid recall: dense (vector store) + BM25 (the session store's postings), fused."""
        vector = yield Embed(self._embedder(), [request.text], query=True)
        pool = max(self.weights.pool, 4 * request.k) + len(excluded)
        nearest, found = yield from self._candidates(request, vector, pool)
        lost = not request.chroma_filters() and len(nearest) < min(pool, found.total_documents)
        if lost and (yield from self._check_vectors(found.total_documents)):
            nearest, found = yield from self._candidates(request, vector, pool)
        facts = (yield Call(self.facts.facts)) if self.facts is not None else []
        return self.rank(found, request, nearest, excluded, facts)

    def _candidates(
        self, request: RecallQuery, vector: Sequence[float], pool: int
    ) -> Steps[tuple[list[tuple[str, float]], LexicalSearch]]:
        nearest = yield Call(
            self._vectors().nearest, (self.user_id, vector, pool, request.chroma_filters())
        )
        found = yield Call(
            self.store.lexical_search,
            (
                self.user_id, terms(request.text), [key for key, _ in nearest], pool,
                request.session_id, request.since, request.until,
            ),
        )  # fmt: skip
        return nearest, found

    def _check_vectors(self, documents: int) -> Steps[bool]:
        """A vector store that lost records (deleted directory) is rebuilt from the log."""
        held = yield Call(self._vectors().count, (self.user_id,))
        if held >= documents:
            return False
        logger.warning(
            "Tier 3 of user %r holds %d of %d vectors; re-indexing from the session log",
            self.user_id, held, documents,
        )  # fmt: skip
        yield Call(self.store.reindex_user, (self.user_id,))
        yield from self.index_steps()
        return True

    def rank(
        self,
        found: LexicalSearch,
        request: RecallQuery,
        nearest: Sequence[tuple[str, float]],
        excluded: set[str],
        facts: Sequence[Fact] = (),
    ) -> list[RecallHit]:
        """Fuse the dense pool with the store's BM25 over the candidates it returned."""
        index = SessionSlots()
        index.add(_candidate(self.user_id, d) for d in found.documents)
        index.add(
            IndexedDoc(f"\x00{s}\x00{q}", "", {"session_id": s, "seq": q})
            for s, q in found.positions
        )  # placeholders: they only keep their neighbours' neighbourhood exact
        lexical = np.zeros(len(index.docs), dtype=np.float64)
        for key, score in found.scores.items():
            slot = index.slot_of(key)
            if slot is not None:
                lexical[slot] = score
        dense: dict[int, float] = {}
        for key, distance in nearest:
            slot = index.slot_of(key)
            if slot is not None:  # a vector whose document is gone (forgotten) never comes back
                dense[slot] = 1.0 - distance
        allowed = index.mask(request.session_id, request.since, request.until)
        allowed[len(found.documents) :] = False
        for key in excluded:
            slot = index.slot_of(key)
            if slot is not None:
                allowed[slot] = False
        ranked = hybrid_rank(dense, lexical, index, allowed, self.weights)
        return timeline_hits(
            ranked, lambda slot: _doc(index, slot), facts, request, self.user_id, self.timeline
        )

    # --- erasing ---------------------------------------------------------------------------

    def forget_steps(
        self, removed: Sequence[tuple[str, str]], *, user: bool = False
    ) -> Steps[None]:
        """Delete vectors after the store erased their messages (documents and log already)."""
        if user:
            yield Call(self._vectors().delete_user, (self.user_id,))
        elif removed:
            keys = [record_key(s, m) for s, m in removed]
            yield Call(self._vectors().delete, (self.user_id, keys))


def _candidate(user_id: str, found: LexicalDocument) -> IndexedDoc:
    """``indexed_doc`` with the creation time the store already holds as a timestamp."""
    doc = found.document
    metadata: dict[str, object] = {
        "user_id": user_id, "session_id": doc.session_id, "message_id": doc.message_id,
        "role": doc.role, "created_at": doc.created_at, "created_ts": found.created_ts,
        "seq": doc.seq,
    }  # fmt: skip
    if doc.name:
        metadata["name"] = doc.name
    return IndexedDoc(found.key, doc.text, metadata)


def _previous(chunk: Sequence[tuple[str, StoredMessage]], n: int) -> Message | None:
    """The message before ``chunk[n]`` in its session, when the chunk holds it."""
    if n == 0:
        return None
    (session, item), (before_session, before) = chunk[n], chunk[n - 1]
    return before.message if before_session == session and before.seq == item.seq - 1 else None


def _doc(index: SessionSlots, slot: int) -> tuple[str, Mapping[str, Any]] | None:
    doc = index.docs[slot]
    return None if doc is None else (doc.text, doc.metadata)


def indexed_created(doc: StoredDocument) -> datetime:
    created = datetime.fromisoformat(doc.created_at)
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


__all__ = [
    "BACKLOG_LIMIT",
    "INDEX_CHUNK",
    "LongTermIndex",
    "document_for",
    "indexed_doc",
    "is_recall_exchange",
]
