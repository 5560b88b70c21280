"""Tier 3's one owner: what a message becomes in long-term memory, writing it, searching it.

Written once as step generators (``tiered_memory.steps``): the sync and async API drive the same
code. The session store is the source of truth: it keeps each indexed message's document and its
BM25 postings, written in one transaction, and gives each recall the user's lexicon as stored now
(a cache checked against the store's version in the recall's snapshot); the vector store holds the
embeddings. So what one process writes or forgets, every other process sees on its next recall.
A recall ranks positions and scores; it reads the text of the hits it returns, no other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..embeddings import Embedder
from ..facts import Fact, FactBook
from ..messages import Message, clipped
from ..state import StoredDocument, StoredMessage
from ..steps import Call, Embed, Steps
from ..store import SessionStore
from .chroma import LongTermStore
from .lexical import IndexedDoc, Lexicon, terms
from .ranking import RankingWeights, addressed_author, hybrid_rank
from .records import RecallHit, RecallQuery, record_key
from .timeline import FACT_ROLE, TimeContext, TimelineWeights, time_context, timeline_hits
from .tool import (
    MEMORY_WRITE_RESULT_PREFIX,
    MEMORY_WRITE_TOOL_NAMES,
    RECALL_HEADER,
    RECALL_TOOL_NAME,
    format_recall_hits,
)
from .vectors import UserVectors, indexed_created

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
        self.vectors = UserVectors(user_id, store, vectors, embedder)
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
            yield from self.vectors.write_steps(docs)
            keys = [(s, item.message.id) for s, item in chunk]
            yield Call(self.store.mark_indexed, (self.user_id, keys, docs))
            done += len(chunk)
        return done

    # --- searching -------------------------------------------------------------------------

    def search_steps(self, request: RecallQuery, excluded: set[str]) -> Steps[list[RecallHit]]:
        """Hybrid recall: dense (vector store) + BM25 (the store's postings), fused."""
        vector = yield Embed(self.vectors.embedder, [request.text], query=True)
        pool = max(self.weights.pool, 4 * request.k) + len(excluded)
        nearest, lexicon = yield from self._candidates(request, vector, pool)
        lost = not request.chroma_filters() and len(nearest) < min(pool, len(lexicon))
        if lost and (yield from self._check_vectors(len(lexicon))):
            nearest, lexicon = yield from self._candidates(request, vector, pool)
        context = time_context(request)  # parsed once: the period search and the timeline
        dated = yield from self._period_nearest(request, context, vector, pool, lexicon)
        facts = (yield Call(self.facts.facts)) if self.facts is not None else []
        hits = self.rank(lexicon, request, [*nearest, *dated], excluded, facts, context)
        keys = [(h.session_id, h.message_id) for h in hits if h.role != FACT_ROLE]
        documents = (yield Call(self.store.documents, (self.user_id, keys))) if keys else []
        return with_texts(hits, documents)

    def _period_nearest(
        self,
        request: RecallQuery,
        context: TimeContext,
        vector: Sequence[float],
        pool: int,
        lexicon: Lexicon,
    ) -> Steps[list[tuple[str, float]]]:
        """The nearest records of the period the question names ("on October 13", "in May"),
        which join the dense pool. A period of at most ``pool`` records is scored exactly
        from their vectors (Chroma's filtered search is approximate and can miss a record of
        a narrow filter); a longer one by a filtered query."""
        window = context.window
        if window is None:
            return []
        since, until = window.start.timestamp(), window.end.timestamp()
        if request.since is not None:
            since = max(since, request.since)
        if request.until is not None:
            until = min(until, request.until)
        slots = np.flatnonzero(lexicon.mask(request.session_id, since, until))
        if not slots.size:
            return []
        long_term = self.vectors.long_term
        if slots.size > pool:
            period = [{"created_ts": {"$gte": since}}, {"created_ts": {"$lte": until}}]
            return (
                yield from self.vectors.call_steps(
                    long_term.nearest, vector, pool, [*request.chroma_filters(), *period]
                )
            )
        keys = [lexicon.keys[slot] for slot in slots.tolist()]
        held: dict[str, Sequence[float]] = yield from self.vectors.call_steps(
            long_term.embeddings, keys
        )
        if not held:
            return []
        matrix = np.asarray(np.stack(list(held.values())), dtype=np.float64)
        query = np.asarray(vector, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
        similarity = matrix @ query / np.maximum(norms, 1e-12)
        return list(zip(held, (1.0 - similarity).tolist(), strict=True))

    def _candidates(
        self, request: RecallQuery, vector: Sequence[float], pool: int
    ) -> Steps[tuple[list[tuple[str, float]], Lexicon]]:
        long_term = self.vectors.long_term
        nearest = yield from self.vectors.call_steps(
            long_term.nearest, vector, pool, request.chroma_filters()
        )
        lexicon = yield Call(self.store.lexicon, (self.user_id, terms(request.text)))
        # read after the vectors: a vector forgotten meanwhile has no document any more
        return nearest, lexicon

    def _check_vectors(self, documents: int) -> Steps[bool]:
        """A vector store that lost records (deleted directory) is rebuilt from the documents."""
        held = yield from self.vectors.call_steps(self.vectors.long_term.count)
        if held >= documents:
            return False
        logger.warning(
            "Tier 3 of user %r holds %d of %d vectors; rebuilding them from the session store",
            self.user_id, held, documents,
        )  # fmt: skip
        yield from self.vectors.rebuild_steps()
        return True

    def rank(
        self,
        lexicon: Lexicon,
        request: RecallQuery,
        nearest: Sequence[tuple[str, float]],
        excluded: set[str],
        facts: Sequence[Fact] = (),
        context: TimeContext | None = None,
    ) -> list[RecallHit]:
        """Fuse the dense pool with BM25 over the user's lexicon; the hits' texts are left
        empty (``with_texts`` fills them). ``context``: the request's, if already made."""
        lexical = lexicon.scores(terms(request.text))
        dense: dict[int, float] = {}
        for key, distance in nearest:
            slot = lexicon.slot_of.get(key)
            if slot is not None:  # a vector whose document is gone (forgotten) never comes back
                dense[slot] = 1.0 - distance
        allowed = lexicon.mask(request.session_id, request.since, request.until)
        for key in excluded:
            slot = lexicon.slot_of.get(key)
            if slot is not None:
                allowed[slot] = False
        addressed = addressed_author(request.text, lexicon.names)
        ranked = hybrid_rank(dense, lexical, lexicon, allowed, self.weights, addressed)
        return timeline_hits(
            ranked,
            lambda slot: _doc(self.user_id, lexicon, slot),
            lambda slot: _key(lexicon, slot),
            facts,
            request,
            self.user_id,
            self.timeline,
            context,
        )

    # --- erasing ---------------------------------------------------------------------------

    def forget_steps(
        self, removed: Sequence[tuple[str, str]], *, user: bool = False
    ) -> Steps[None]:
        """Delete vectors after the store erased their messages (documents and log already)."""
        if user:
            yield Call(self.vectors.long_term.delete_user, (self.user_id,))
        elif removed:
            keys = [record_key(s, m) for s, m in removed]
            yield from self.vectors.call_steps(self.vectors.long_term.delete, keys, compares=False)


def with_texts(hits: Sequence[RecallHit], documents: Sequence[StoredDocument]) -> list[RecallHit]:
    """The hits with their documents' text, name and time (fact hits carry theirs); a hit whose
    document was forgotten since the ranking read the lexicon is dropped."""
    by_key = {(d.session_id, d.message_id): d for d in documents}
    out = []
    for hit in hits:
        if hit.role == FACT_ROLE:
            out.append(hit)
            continue
        doc = by_key.get((hit.session_id, hit.message_id))
        if doc is not None:
            out.append(replace(hit, text=doc.text, name=doc.name, created_at=indexed_created(doc)))
    return out


def _previous(chunk: Sequence[tuple[str, StoredMessage]], n: int) -> Message | None:
    """The message before ``chunk[n]`` in its session, when the chunk holds it."""
    if n == 0:
        return None
    (session, item), (before_session, before) = chunk[n], chunk[n - 1]
    return before.message if before_session == session and before.seq == item.seq - 1 else None


def _key(lexicon: Lexicon, slot: int) -> tuple[str, str, float]:
    return lexicon.session(slot), lexicon.message_ids[slot], float(lexicon.created[slot])


def _doc(user_id: str, lexicon: Lexicon, slot: int) -> tuple[str, Mapping[str, Any]]:
    """A slot as the timeline sees it: no text yet, the metadata a hit is made of."""
    created = float(lexicon.created[slot])
    metadata: dict[str, object] = {
        "user_id": user_id, "session_id": lexicon.session(slot),
        "message_id": lexicon.message_ids[slot], "role": lexicon.role(slot),
        "created_at": datetime.fromtimestamp(created, tz=timezone.utc).isoformat(),
        "created_ts": created, "seq": lexicon.seq(slot),
    }  # fmt: skip
    return "", metadata


__all__ = [
    "BACKLOG_LIMIT",
    "INDEX_CHUNK",
    "LongTermIndex",
    "document_for",
    "indexed_doc",
    "is_recall_exchange",
    "with_texts",
]
