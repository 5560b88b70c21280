"""One user's side of the vector store: documents written as records, and an index rebuilt.

The session store holds every Tier-3 document (messages and facts); the vector store holds only
their embeddings, so what it loses is never lost. When a crash mid-write leaves a user's index
unreadable (Chroma writes its HNSW files in place: a SIGKILL can truncate one), the store drops
the collection and raises ``VectorIndexLostError``; the call that met it rebuilds the user's
records from the documents and is made once more.

The vector store also records which embedder made a user's vectors (when the embedder names its
model). A memory with another one is refused (``EmbedderChangedError``) before it reads or
writes a vector: two models' vectors do not compare, and mixing them would silently ruin
recall. ``rebuild`` re-embeds the user's documents with the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..embeddings import Embedder, check_vectors, embedder_identity
from ..errors import EmbedderChangedError, VectorIndexLostError
from ..state import StoredDocument
from ..steps import Call, Embed, Steps
from ..store import SessionStore
from .chroma import LongTermStore
from .records import LongTermRecord

logger = logging.getLogger("tiered_memory")

REBUILD_CHUNK = 256  # documents embedded and written together by a rebuild


def indexed_created(doc: StoredDocument) -> datetime:
    created = datetime.fromisoformat(doc.created_at)
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


def long_term_records(
    user_id: str, docs: Sequence[StoredDocument], vectors: Sequence[Sequence[float]]
) -> list[LongTermRecord]:
    """What the vector store keeps of each document, with its vector."""
    return [
        LongTermRecord(
            user_id=user_id, session_id=d.session_id, message_id=d.message_id, role=d.role,
            text=d.text, created_at=indexed_created(d), embedding=v, name=d.name, seq=d.seq,
        )
        for d, v in zip(docs, vectors, strict=True)
    ]  # fmt: skip


class UserVectors:
    """The records of one user in the vector store, kept rebuildable from the session store."""

    def __init__(
        self,
        user_id: str,
        store: SessionStore,
        vectors: Callable[[], LongTermStore],
        embedder: Callable[[], Embedder],
    ) -> None:
        self.user_id = user_id
        self.store = store
        self._vectors = vectors
        self._embedder = embedder

    @property
    def long_term(self) -> LongTermStore:
        return self._vectors()

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    def call_steps(
        self, operation: Callable[..., Any], *args: Any, compares: bool = True
    ) -> Steps[Any]:
        """``operation(user_id, *args)`` on the vector store; one that ``compares`` vectors
        (not a delete) first checks that the store's embedder is this one, in the same call.
        An index found lost is rebuilt and the operation made once more."""
        call = Call(self._checked, (operation, args, compares))
        try:
            return (yield call)
        except VectorIndexLostError as exc:
            logger.warning(
                "the vector index of user %r was unreadable and dropped (%s); rebuilding it "
                "from the session store", self.user_id, exc,
            )  # fmt: skip
            yield from self.rebuild_steps()
            return (yield call)

    def write_steps(self, docs: Sequence[StoredDocument]) -> Steps[None]:
        """Embed ``docs`` and write their records."""
        if not docs:
            return
        yield from self.call_steps(self.long_term.upsert, (yield from self._records(docs)))

    def _checked(self, operation: Callable[..., Any], args: tuple[Any, ...], compares: bool) -> Any:
        if compares:
            self._check_embedder()
        return operation(self.user_id, *args)

    def _check_embedder(self) -> None:
        """The store reads the recorded embedder from its open collection handle (no round
        trip), so a change another process made is seen on the next call."""
        current = embedder_identity(self.embedder)
        if current is None:
            return
        recorded = self.long_term.embedder_of(self.user_id)
        if recorded is None:  # a new user, or vectors from before embedders were recorded
            self.long_term.record_embedder(self.user_id, current)
        elif recorded != current:
            raise EmbedderChangedError(
                f"the vectors of user {self.user_id!r} were made by embedder {recorded!r}; "
                f"this memory embeds with {current!r}, whose vectors do not compare with "
                "them. Call rebuild_vectors() on a memory with the new embedder to "
                "re-embed them from the session store, or keep the old embedder."
            )

    def rebuild_steps(self, *, replace: bool = False) -> Steps[int]:
        """Write every document of the user again (messages and facts); returns how many.
        ``replace`` first drops the user's vectors and records this memory's embedder as
        theirs (a change of embedder). Nothing here is retried: a second loss in the middle of
        a rebuild raises."""
        if replace:
            yield Call(self.long_term.delete_user, (self.user_id,))
            current = embedder_identity(self.embedder)
            if current is not None:
                yield Call(self.long_term.record_embedder, (self.user_id, current))
        docs: list[StoredDocument] = yield Call(self.store.documents, (self.user_id,))
        for start in range(0, len(docs), REBUILD_CHUNK):
            records = yield from self._records(docs[start : start + REBUILD_CHUNK])
            yield Call(self.long_term.upsert, (self.user_id, records))
        return len(docs)

    def _records(self, docs: Sequence[StoredDocument]) -> Steps[list[LongTermRecord]]:
        vectors = yield Embed(self.embedder, [d.text for d in docs])
        return long_term_records(self.user_id, docs, check_vectors(vectors, len(docs)))


__all__ = ["REBUILD_CHUNK", "UserVectors", "indexed_created", "long_term_records"]
