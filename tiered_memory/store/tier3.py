"""The session store's Tier-3 side: what waits for indexing, the documents, the change log.

The log is the source of truth for Tier 3. A message is indexed when its document is in
``tm_documents`` (and its vector in the vector store); every index write and every erasure also
appends to ``tm_tier3_changes`` in the same transaction, so a process's in-memory BM25 index is
brought up to date by reading the changes after the last one it saw: consistent with the store by
construction, whoever wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state import StoredDocument, StoredMessage, Tier3Changes
from .schema import changes_table, documents_table, leases_table, messages_table, sessions_table


class Tier3Tables:
    """Mixed into :class:`SqlSessionStore`: Tier-3 bookkeeping, and erasure across tiers."""

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _lock_session(self, conn: Connection, user_id: str, session_id: str) -> Any:
        raise NotImplementedError

    # --- indexing ------------------------------------------------------------------------

    def unindexed(self, user_id: str, limit: int = 256) -> list[tuple[str, StoredMessage]]:
        """Messages of ``user_id`` not yet in Tier 3 (new, or after a crash or a failure)."""
        from .sessions import row_to_stored

        m = messages_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(messages_table)
                .where(m.user_id == user_id, m.indexed == sa.false())
                .order_by(m.session_id, m.seq)
                .limit(limit)
            ).all()
        return [(r.session_id, row_to_stored(r)) for r in rows]

    def mark_indexed(
        self,
        user_id: str,
        keys: Sequence[tuple[str, str]],
        documents: Sequence[StoredDocument] = (),
    ) -> None:
        """Mark ``(session_id, message_id)`` pairs as done and store their documents."""
        if not keys:
            return
        m, d = messages_table.c, documents_table.c
        by_session: dict[str, list[str]] = {}
        for session_id, message_id in keys:
            by_session.setdefault(session_id, []).append(message_id)
        with self._write() as conn:
            for session_id, ids in by_session.items():
                conn.execute(
                    sa.update(messages_table)
                    .where(m.user_id == user_id, m.session_id == session_id, m.message_id.in_(ids))
                    .values(indexed=True)
                )
            replaced = _by_session([(doc.session_id, doc.message_id) for doc in documents])
            for session_id, ids in replaced.items():  # a re-index after a lost vector store
                conn.execute(
                    sa.delete(documents_table).where(
                        d.user_id == user_id, d.session_id == session_id, d.message_id.in_(ids)
                    )
                )
            if documents:
                conn.execute(
                    sa.insert(documents_table),
                    [{"user_id": user_id, **_document_row(doc)} for doc in documents],
                )
                _log(conn, user_id, [(doc.session_id, doc.message_id) for doc in documents], False)

    def documents(
        self, user_id: str, keys: Sequence[tuple[str, str]] | None = None
    ) -> list[StoredDocument]:
        """The user's Tier-3 documents (all, or those of ``keys``)."""
        d = documents_table.c
        query = sa.select(documents_table).where(d.user_id == user_id)
        with self._read() as conn:
            if keys is None:
                rows = conn.execute(query).all()
            else:
                rows = []
                for session_id, ids in _by_session(keys).items():
                    rows += conn.execute(
                        query.where(d.session_id == session_id, d.message_id.in_(ids))
                    ).all()
        return [
            StoredDocument(
                session_id=r.session_id,
                message_id=r.message_id,
                seq=r.seq,
                role=r.role,
                created_at=r.created_at,
                text=r.text,
                name=r.name,
            )
            for r in rows
        ]

    def document_count(self, user_id: str) -> int:
        d = documents_table.c
        with self._read() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).where(d.user_id == user_id)).scalar_one()
            )

    def changes_since(self, user_id: str, after: int) -> Tier3Changes:
        """Tier-3 writes of ``user_id`` with a change id above ``after``, in order."""
        c = changes_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(c.change_id, c.session_id, c.message_id, c.removed)
                .where(c.user_id == user_id, c.change_id > after)
                .order_by(c.change_id)
            ).all()
        if not rows:
            return Tier3Changes(latest=after)
        reset = any(r.removed and not r.session_id and not r.message_id for r in rows)
        # Only the last change of a key counts (removed, then indexed again: indexed).
        last: dict[tuple[str, str], bool] = {}
        for r in rows:
            if r.session_id or r.message_id:
                last[(r.session_id, r.message_id)] = bool(r.removed)
        return Tier3Changes(
            latest=int(rows[-1].change_id),
            added=tuple(k for k, removed in last.items() if not removed),
            removed=tuple(k for k, removed in last.items() if removed),
            reset=reset,
        )

    def latest_change(self, user_id: str) -> int:
        c = changes_table.c
        with self._read() as conn:
            value = conn.execute(
                sa.select(sa.func.max(c.change_id)).where(c.user_id == user_id)
            ).scalar_one()
        return int(value or 0)

    def reindex_user(self, user_id: str) -> int:
        """Mark every indexed message of ``user_id`` as waiting again (a lost vector store)."""
        m = messages_table.c
        d = documents_table.c
        with self._write() as conn:
            keys = [
                (r.session_id, r.message_id)
                for r in conn.execute(
                    sa.select(d.session_id, d.message_id).where(d.user_id == user_id)
                )
            ]
            for session_id, ids in _by_session(keys).items():
                conn.execute(
                    sa.update(messages_table)
                    .where(m.user_id == user_id, m.session_id == session_id, m.message_id.in_(ids))
                    .values(indexed=False)
                )
        return len(keys)

    # --- erasure -------------------------------------------------------------------------

    def clear(self, user_id: str, session_id: str) -> list[str]:
        """Delete the session; returns the message ids it held (to delete from Tier 3)."""
        m, s, d, lc = messages_table.c, sessions_table.c, documents_table.c, leases_table.c
        with self._write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    sa.select(m.message_id).where(m.user_id == user_id, m.session_id == session_id)
                )
            ]
            docs = [
                (session_id, r[0])
                for r in conn.execute(
                    sa.select(d.message_id).where(d.user_id == user_id, d.session_id == session_id)
                )
            ]
            conn.execute(
                sa.delete(messages_table).where(m.user_id == user_id, m.session_id == session_id)
            )
            conn.execute(
                sa.delete(documents_table).where(d.user_id == user_id, d.session_id == session_id)
            )
            conn.execute(
                sa.delete(sessions_table).where(s.user_id == user_id, s.session_id == session_id)
            )
            conn.execute(
                sa.delete(leases_table).where(lc.user_id == user_id, lc.session_id == session_id)
            )
            _log(conn, user_id, docs, True)
        return ids

    def forget_message(self, user_id: str, message_id: str) -> list[tuple[str, str]]:
        """Delete a message from every session of ``user_id`` that holds it.

        A session whose summary already covered the message gets its summary reset, so the
        summary is re-derived from the remaining messages on the next compaction. Returns the
        ``(session_id, message_id)`` pairs removed.
        """
        m, s, d = messages_table.c, sessions_table.c, documents_table.c
        with self._write() as conn:
            rows = conn.execute(
                sa.select(m.session_id, m.seq, m.tokens).where(
                    m.user_id == user_id, m.message_id == message_id
                )
            ).all()
            for session_id, seq, tokens in rows:
                row = self._lock_session(conn, user_id, session_id)
                conn.execute(
                    sa.delete(messages_table).where(
                        m.user_id == user_id, m.session_id == session_id, m.seq == seq
                    )
                )
                changes: dict[str, Any] = {"history_tokens": max(0, row.history_tokens - tokens)}
                if seq < row.summarized_upto:
                    changes.update(summary="", summary_tokens=0, summarized_upto=0)
                conn.execute(
                    sa.update(sessions_table)
                    .where(s.user_id == user_id, s.session_id == session_id)
                    .values(version=row.version + 1, **changes)
                )
            removed = [(session_id, message_id) for session_id, _, _ in rows]
            conn.execute(
                sa.delete(documents_table).where(d.user_id == user_id, d.message_id == message_id)
            )
            _log(conn, user_id, removed, True)
        return removed

    def forget_user(self, user_id: str) -> list[tuple[str, str]]:
        """Delete every session, message and document of ``user_id``; returns what was removed."""
        m, s = messages_table.c, sessions_table.c
        with self._write() as conn:
            removed = [
                (r[0], r[1])
                for r in conn.execute(
                    sa.select(m.session_id, m.message_id).where(m.user_id == user_id)
                )
            ]
            conn.execute(sa.delete(messages_table).where(m.user_id == user_id))
            conn.execute(sa.delete(sessions_table).where(s.user_id == user_id))
            conn.execute(sa.delete(leases_table).where(leases_table.c.user_id == user_id))
            conn.execute(sa.delete(documents_table).where(documents_table.c.user_id == user_id))
            conn.execute(sa.delete(changes_table).where(changes_table.c.user_id == user_id))
            _log(conn, user_id, [("", "")], True)  # the reset marker every process sees
        return removed


def _document_row(doc: StoredDocument) -> dict[str, Any]:
    return {
        "session_id": doc.session_id, "message_id": doc.message_id, "seq": doc.seq,
        "role": doc.role, "name": doc.name, "created_at": doc.created_at, "text": doc.text,
    }  # fmt: skip


def _by_session(keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for session_id, message_id in keys:
        out.setdefault(session_id, []).append(message_id)
    return out


def _log(conn: Connection, user_id: str, keys: Sequence[tuple[str, str]], removed: bool) -> None:
    if keys:
        conn.execute(
            sa.insert(changes_table),
            [
                {"user_id": user_id, "session_id": s, "message_id": m, "removed": removed}
                for s, m in keys
            ],
        )
