"""Tier 3's one owner: what a message becomes in long-term memory, writing it, searching it.

Written once as step generators (``tiered_memory.steps``): the sync and async API drive the same
code. The session store is the source of truth: it keeps each indexed message's document and a
change log; the vector store holds the embeddings; the BM25 index of a user is a cache rebuilt
from the documents and brought up to date from the change log before every search, so what one
process writes or forgets, every other process sees on its next recall.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..embeddings import Embedder, check_vectors
from ..facts import Fact, FactBook
from ..messages import Message, clipped
from ..state import StoredDocument, StoredMessage
from ..steps import Call, Embed, Steps
from ..store import SessionStore
from .chroma import LongTermStore
from .lexical import IndexedDoc, LexicalIndex
from .ranking import RankingWeights, hybrid_rank
from .records import LongTermRecord, RecallHit, RecallQuery, record_key
from .timeline import timeline_hits
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


@dataclass
class _Cached:
    index: LexicalIndex
    latest: int
    lock: threading.Lock


class LexicalCache:
    """Per-user BM25 indexes (at most ``max_users``, least recently used dropped first)."""

    def __init__(self, max_users: int = 256) -> None:
        self.max_users = max_users
        self._entries: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, store: SessionStore, user_id: str) -> tuple[LexicalIndex, bool]:
        """The user's index, current with the store's change log; True if built cold."""
        key = _cache_key(store, user_id)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = _Cached(LexicalIndex(), -1, threading.Lock())
                self._entries[key] = entry
                while len(self._entries) > self.max_users:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(key)
        with entry.lock:
            cold = entry.latest < 0
            changes = None if cold else store.changes_since(user_id, entry.latest)
            if cold or (changes is not None and changes.reset):
                latest = store.latest_change(user_id)
                entry.index = LexicalIndex()
                entry.index.add(indexed_doc(user_id, d) for d in store.documents(user_id))
                entry.latest = latest
            elif changes is not None and changes.latest != entry.latest:
                entry.index.remove(record_key(s, m) for s, m in changes.removed)
                if changes.added:
                    docs = store.documents(user_id, changes.added)
                    entry.index.add(indexed_doc(user_id, d) for d in docs)
                entry.latest = changes.latest
            return entry.index, cold

    def drop(self, store: SessionStore, user_id: str) -> None:
        with self._lock:
            self._entries.pop(_cache_key(store, user_id), None)


def _cache_key(store: SessionStore, user_id: str) -> tuple[str, str]:
    return str(getattr(store, "url", id(store))), user_id


class LongTermIndex:
    """Tier 3 of one user: index what waits, search with hybrid ranking, erase."""

    def __init__(
        self,
        user_id: str,
        store: SessionStore,
        vectors: Callable[[], LongTermStore],
        embedder: Callable[[], Embedder],
        lexical: LexicalCache,
        prepare: Callable[[Message, Message | None], Message],
        weights: RankingWeights | None = None,
    ) -> None:
        self.user_id = user_id
        self.store = store
        self._vectors = vectors
        self._embedder = embedder
        self.lexical = lexical
        self.prepare = prepare
        self.weights = weights or RankingWeights()
        self.facts: FactBook | None = None  # set by TieredMemory when facts are on

    # --- writing ---------------------------------------------------------------------------

    def index_steps(self) -> Steps[int]:
        """Embed and store every message of the user that waits for Tier 3; returns the count."""
        items = yield Call(self.store.unindexed, (self.user_id, BACKLOG_LIMIT))
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
        """Hybrid recall: dense (vector store) + BM25 (this process's cache), fused."""
        index, cold = yield Call(self.lexical.fresh, (self.store, self.user_id))
        if cold:
            yield from self._check_vectors(len(index))
        vector = yield Embed(self._embedder(), [request.text], query=True)
        pool = max(self.weights.pool, 4 * request.k) + len(excluded)
        nearest = yield Call(
            self._vectors().nearest, (self.user_id, vector, pool, request.chroma_filters())
        )
        facts = (yield Call(self.facts.facts)) if self.facts is not None else []
        return self.rank(index, request, nearest, excluded, facts)

    def _check_vectors(self, documents: int) -> Steps[None]:
        """A vector store that lost records (deleted directory) is rebuilt from the log."""
        held = yield Call(self._vectors().count, (self.user_id,))
        if held < documents:
            logger.warning(
                "Tier 3 of user %r holds %d of %d vectors; re-indexing from the session log",
                self.user_id, held, documents,
            )  # fmt: skip
            yield Call(self.store.reindex_user, (self.user_id,))
            yield from self.index_steps()

    def rank(
        self,
        index: LexicalIndex,
        request: RecallQuery,
        nearest: Sequence[tuple[str, float]],
        excluded: set[str],
        facts: Sequence[Fact] = (),
    ) -> list[RecallHit]:
        dense: dict[int, float] = {}
        for key, distance in nearest:
            slot = index.slot_of(key)
            if slot is not None:  # a vector whose document is gone (forgotten) never comes back
                dense[slot] = 1.0 - distance
        allowed = index.mask(request.session_id, request.since, request.until)
        for key in excluded:
            slot = index.slot_of(key)
            if slot is not None:
                allowed[slot] = False
        ranked = hybrid_rank(dense, index.scores(request.text), index, allowed, self.weights)
        return timeline_hits(ranked, lambda slot: _doc(index, slot), facts, request, self.user_id)

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
        if user:
            self.lexical.drop(self.store, self.user_id)


def _previous(chunk: Sequence[tuple[str, StoredMessage]], n: int) -> Message | None:
    """The message before ``chunk[n]`` in its session, when the chunk holds it."""
    if n == 0:
        return None
    (session, item), (before_session, before) = chunk[n], chunk[n - 1]
    return before.message if before_session == session and before.seq == item.seq - 1 else None


def _doc(index: LexicalIndex, slot: int) -> tuple[str, Mapping[str, Any]] | None:
    doc = index.docs[slot]
    return None if doc is None else (doc.text, doc.metadata)


def indexed_created(doc: StoredDocument) -> datetime:
    created = datetime.fromisoformat(doc.created_at)
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


__all__ = [
    "BACKLOG_LIMIT",
    "INDEX_CHUNK",
    "LexicalCache",
    "LongTermIndex",
    "document_for",
    "indexed_doc",
    "is_recall_exchange",
]
