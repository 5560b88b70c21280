"""The session store: the lossless log, the window/pending pointers, the summary, Tier-3 books.

``SessionStore`` is the protocol the memory needs; ``SqlSessionStore`` implements it on SQLite
(embedded, default) and PostgreSQL (several workers).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from ..messages import Message
from ..state import SessionState, StoredDocument, StoredMessage
from .sessions import DEFAULT_TIMEOUT, SessionTransaction, SqlSessionStore
from .tier3 import DEFAULT_LEXICON_CACHE_BYTES, LexiconCache

if TYPE_CHECKING:
    from ..recall.lexical import Lexicon


class SessionStore(Protocol):
    """Persistence of sessions. ``SqlSessionStore`` is the implementation for SQL databases."""

    def load(
        self, user_id: str, session_id: str, *, pending_tail_tokens: int | None = None
    ) -> SessionState: ...

    def transaction(
        self, user_id: str, session_id: str
    ) -> AbstractContextManager[SessionTransaction]: ...

    def commit_summary(
        self,
        state: SessionState,
        summary: str,
        summary_tokens: int,
        summarized_upto: int,
        input_tokens: int,
    ) -> bool: ...

    def record_failure(self, user_id: str, session_id: str) -> None: ...

    def claim_compaction(self, user_id: str, session_id: str, owner: str, ttl: float) -> bool: ...

    def release_compaction(self, user_id: str, session_id: str, owner: str) -> None: ...

    def history(self, user_id: str, session_id: str) -> list[Message]: ...

    def unindexed(self, user_id: str, limit: int = 256) -> list[tuple[str, StoredMessage]]: ...

    def mark_indexed(
        self,
        user_id: str,
        keys: Sequence[tuple[str, str]],
        documents: Sequence[StoredDocument] = (),
    ) -> None: ...

    def documents(
        self, user_id: str, keys: Sequence[tuple[str, str]] | None = None
    ) -> list[StoredDocument]: ...

    def document_count(self, user_id: str) -> int: ...

    def lexicon(self, user_id: str, query_terms: Sequence[str] = ()) -> Lexicon:
        """The user's Tier-3 documents as stored now, with the postings of ``query_terms``."""
        ...

    def clear(self, user_id: str, session_id: str) -> list[str]: ...

    def forget_message(self, user_id: str, message_id: str) -> list[tuple[str, str]]: ...

    def forget_user(self, user_id: str) -> list[tuple[str, str]]: ...

    def checkpoint(self) -> None: ...

    def close(self) -> None: ...


__all__ = [
    "DEFAULT_LEXICON_CACHE_BYTES",
    "DEFAULT_TIMEOUT",
    "LexiconCache",
    "SessionStore",
    "SessionTransaction",
    "SqlSessionStore",
]
