"""The session store's Tier-3 side: what waits for indexing, the documents, lexical search.

A message is indexed when its document is in ``tm_documents`` (and its vector in the vector
store). Every document write and every erasure also writes the document's BM25 postings
(``tm_postings``, ``tm_lexical_docs``, ``tm_lexical_users``) in the same transaction, and recall
runs BM25 as SQL over them: what one process writes or forgets is what every other process's next
recall searches, and no process holds a per-user index. The tokenizer and the formula are
``recall.lexical``'s, so scores equal the in-memory reference (``LexicalIndex``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state import StoredDocument, StoredMessage
from .schema import (
    documents_table,
    insert_ignore,
    leases_table,
    lexical_docs_table,
    lexical_users_table,
    messages_table,
    postings_table,
    sessions_table,
)

Position = tuple[str, int]  # (session_id, seq): a document of one user
_INSERT_BATCH = 5_000  # rows per executemany


@dataclass(frozen=True)
class LexicalDocument:
    """A document one recall ranks, with its vector-store key and creation time."""

    document: StoredDocument
    key: str
    created_ts: float


@dataclass(frozen=True)
class LexicalSearch:
    """What the store's BM25 found for one recall: candidates, their neighbours, their scores.

    ``documents`` holds the best lexical matches (at most the limit asked, after the filters),
    the dense candidates still in the store, and their previous and next documents in their
    session. ``scores`` is the BM25 score of each of them by key, absent meaning 0.
    """

    documents: tuple[LexicalDocument, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    total_documents: int = 0  # the user's Tier-3 documents (BM25's N)
    positions: tuple[tuple[str, int], ...] = ()
    """(session_id, seq) of the first neighbours' other neighbours: never candidates, but they
    keep those neighbours' own neighbourhood exact."""


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
            if documents:
                ensure_postings(conn, user_id)
                replaced = _positions_of(
                    conn, user_id, [(x.session_id, x.message_id) for x in documents]
                )
                _unindex(conn, user_id, replaced + [(x.session_id, x.seq) for x in documents])
                for session_id, ids in _by_session(
                    [(doc.session_id, doc.message_id) for doc in documents]
                ).items():  # a re-index after a lost vector store
                    conn.execute(
                        sa.delete(documents_table).where(
                            d.user_id == user_id, d.session_id == session_id, d.message_id.in_(ids)
                        )
                    )
                _insert(
                    conn,
                    documents_table,
                    [{"user_id": user_id, **_document_row(x)} for x in documents],
                )
                _index(conn, user_id, documents)

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

    # --- lexical search ------------------------------------------------------------------

    def lexical_search(
        self,
        user_id: str,
        query_terms: Sequence[str],
        dense_keys: Sequence[str],
        limit: int,
        session_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> LexicalSearch:
        """BM25 over the user's documents, in one snapshot; see :class:`LexicalSearch`.

        The top ``limit`` lexical matches obey the filters (session, created between ``since``
        and ``until``); dense candidates and neighbours are returned whatever the filters (the
        ranking masks them). Postings of a user from an older store are built first.
        """
        for attempt in (0, 1):
            with self._read() as conn:
                found = _search(
                    conn, user_id, query_terms, dense_keys, limit, session_id, since, until
                )
            if found is not None or attempt:
                return found or LexicalSearch()
            with self._write() as conn:
                ensure_postings(conn, user_id)
        return LexicalSearch()  # pragma: no cover - the loop returns

    def lexical_stats(self, user_id: str) -> tuple[int, int] | None:
        """``(documents, total_length)`` of the user's BM25, or None if not built yet."""
        with self._read() as conn:
            return _stats(conn, user_id)

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
            _unindex_session(conn, user_id, session_id)
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
            positions = [
                (r.session_id, r.seq)
                for r in conn.execute(
                    sa.select(d.session_id, d.seq).where(
                        d.user_id == user_id, d.message_id == message_id
                    )
                )
            ]
            conn.execute(
                sa.delete(documents_table).where(d.user_id == user_id, d.message_id == message_id)
            )
            _unindex(conn, user_id, positions)
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
            for table in (postings_table, lexical_docs_table, lexical_users_table):
                conn.execute(sa.delete(table).where(table.c.user_id == user_id))
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


def _insert(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), _INSERT_BATCH):
        conn.execute(sa.insert(table), list(rows[start : start + _INSERT_BATCH]))


def _timestamp(created_at: str) -> float:
    created = datetime.fromisoformat(created_at)
    return (created if created.tzinfo else created.replace(tzinfo=timezone.utc)).timestamp()


# --- lexical postings: written and erased with the documents, in their transaction ---------------


def ensure_postings(conn: Connection, user_id: str) -> None:
    """Build the user's postings from its documents unless built (a store of version 2).

    The statistics row is inserted first with ``documents = -1`` (being built): on PostgreSQL a
    concurrent builder waits on that row and then finds it made; on SQLite writers are
    serialized anyway. The row read back decides, not the driver's rowcount.
    """
    u = lexical_users_table.c
    conn.execute(
        insert_ignore(conn, lexical_users_table).values(
            user_id=user_id, documents=-1, total_length=0
        )
    )
    documents = conn.execute(
        sa.select(u.documents).where(u.user_id == user_id).with_for_update()
    ).scalar_one()
    if documents >= 0:
        return
    for table in (postings_table, lexical_docs_table):  # leftovers of nothing, to be sure
        conn.execute(sa.delete(table).where(table.c.user_id == user_id))
    conn.execute(
        sa.update(lexical_users_table)
        .where(u.user_id == user_id)
        .values(documents=0, total_length=0)
    )
    d = documents_table.c
    rows = conn.execute(
        sa.select(d.session_id, d.message_id, d.seq, d.created_at, d.text).where(
            d.user_id == user_id
        )
    ).all()
    _index(conn, user_id, rows)


def _index(conn: Connection, user_id: str, documents: Iterable[Any]) -> None:
    """Postings of ``documents`` (not indexed yet) and the user's statistics."""
    from ..recall.lexical import term_counts
    from ..recall.records import record_key

    docs: list[dict[str, Any]] = []
    postings: list[dict[str, Any]] = []
    total = 0
    for doc in documents:
        counts = term_counts(doc.text)
        length = sum(counts.values())
        created_ts = _timestamp(doc.created_at)
        total += length
        docs.append(
            {
                "user_id": user_id, "session_id": doc.session_id, "seq": doc.seq,
                "message_id": doc.message_id, "doc_key": record_key(doc.session_id, doc.message_id),
                "length": length, "created_ts": created_ts,
            }
        )  # fmt: skip
        postings += [
            {
                "user_id": user_id, "term": term, "session_id": doc.session_id, "seq": doc.seq,
                "tf": tf, "length": length, "created_ts": created_ts,
            }
            for term, tf in counts.items()
        ]  # fmt: skip
    if docs:
        _insert(conn, lexical_docs_table, docs)
        _insert(conn, postings_table, postings)
        _count(conn, user_id, len(docs), total)


def _count(conn: Connection, user_id: str, documents: int, length: int) -> None:
    u = lexical_users_table.c
    conn.execute(
        sa.update(lexical_users_table)
        .where(u.user_id == user_id)
        .values(documents=u.documents + documents, total_length=u.total_length + length)
    )


def _positions_of(
    conn: Connection, user_id: str, keys: Sequence[tuple[str, str]]
) -> list[Position]:
    d = documents_table.c
    out: list[Position] = []
    for session_id, ids in _by_session(keys).items():
        out += [
            (session_id, int(r.seq))
            for r in conn.execute(
                sa.select(d.seq).where(
                    d.user_id == user_id, d.session_id == session_id, d.message_id.in_(ids)
                )
            )
        ]
    return out


def _unindex(conn: Connection, user_id: str, positions: Sequence[Position]) -> None:
    """Erase the postings of the documents at ``positions`` (those indexed)."""
    by_session: dict[str, set[int]] = {}
    for session_id, seq in positions:
        by_session.setdefault(session_id, set()).add(seq)
    for session_id, seqs in by_session.items():
        _unindex_where(conn, user_id, _at(session_id, sorted(seqs)))


def _at(session_id: str, seqs: list[int]) -> Any:
    return lambda c: sa.and_(c.session_id == session_id, c.seq.in_(seqs))


def _unindex_session(conn: Connection, user_id: str, session_id: str) -> None:
    _unindex_where(conn, user_id, lambda c: c.session_id == session_id)


def _unindex_where(conn: Connection, user_id: str, where: Any) -> None:
    ld, p = lexical_docs_table.c, postings_table.c
    gone = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(ld.length)).where(ld.user_id == user_id, where(ld))
    ).one()
    if not gone[0]:
        return
    conn.execute(sa.delete(postings_table).where(p.user_id == user_id, where(p)))
    conn.execute(sa.delete(lexical_docs_table).where(ld.user_id == user_id, where(ld)))
    _count(conn, user_id, -int(gone[0]), -int(gone[1] or 0))


# --- lexical search: BM25 in SQL -----------------------------------------------------------------


def _stats(conn: Connection, user_id: str) -> tuple[int, int] | None:
    u = lexical_users_table.c
    row = conn.execute(
        sa.select(u.documents, u.total_length).where(u.user_id == user_id)
    ).one_or_none()
    return None if row is None else (int(row.documents), int(row.total_length))


def _search(
    conn: Connection,
    user_id: str,
    query_terms: Sequence[str],
    dense_keys: Sequence[str],
    limit: int,
    session_id: str | None,
    since: float | None,
    until: float | None,
) -> LexicalSearch | None:
    from ..recall.lexical import K1, B, average_length, idf

    stats = _stats(conn, user_id)
    if stats is None:
        return None
    total, length = stats
    if not total:
        return LexicalSearch()
    p, ld = postings_table.c, lexical_docs_table.c
    wanted = sorted(set(query_terms))
    weights: dict[str, float] = {}
    if wanted:
        for term, df in conn.execute(
            sa.select(p.term, sa.func.count())
            .where(p.user_id == user_id, p.term.in_(wanted))
            .group_by(p.term)
        ):
            weights[term] = idf(total, int(df))

    def score_query(*where: Any) -> Any:
        tf = sa.cast(p.tf, sa.Float)
        norm = (
            tf
            + K1 * (1.0 - B)
            + (K1 * B / average_length(total, length)) * sa.cast(p.length, sa.Float)
        )
        weight = sa.case(weights, value=p.term, else_=0.0)
        score = sa.func.sum(weight * tf * (K1 + 1.0) / norm).label("score")
        return (
            sa.select(p.session_id, p.seq, score)
            .where(p.user_id == user_id, p.term.in_(sorted(weights)), *where)
            .group_by(p.session_id, p.seq)
        )

    scores: dict[Position, float] = {}
    if weights:
        filters = []
        if session_id is not None:
            filters.append(p.session_id == session_id)
        if since is not None:
            filters.append(p.created_ts >= since)
        if until is not None:
            filters.append(p.created_ts <= until)
        top = score_query(*filters).order_by(sa.desc("score"), p.session_id, p.seq).limit(limit)
        scores = {(r.session_id, int(r.seq)): float(r.score) for r in conn.execute(top)}
    complete = len(scores) < limit  # every other document (within the filters) scores 0
    candidates: set[Position] = set(scores)
    if dense_keys:
        candidates.update(
            (r.session_id, int(r.seq))
            for r in conn.execute(
                sa.select(ld.session_id, ld.seq).where(
                    ld.user_id == user_id, ld.doc_key.in_(sorted(set(dense_keys)))
                )
            )
        )
    found: dict[Position, LexicalDocument] = {}
    first = _fetch(conn, user_id, candidates, found)  # their neighbours, not loaded yet
    second = _fetch(conn, user_id, first, found)  # the neighbours' neighbours: positions only
    if weights and not complete:
        missing = sorted((candidates | first) - set(scores))
        for start in range(0, len(missing), 500):
            sql, params = _at_positions(postings_table.name, user_id, missing[start : start + 500])
            rows = conn.execute(score_query(sa.text(sql).bindparams(*params)))
            scores.update({(r.session_id, int(r.seq)): float(r.score) for r in rows})
    documents = tuple(
        found[position] for position in sorted(found, key=lambda x: (x[0], found[x].key))
    )
    return LexicalSearch(
        documents=documents,
        scores={found[x].key: score for x, score in scores.items() if x in found},
        total_documents=total,
        positions=tuple(sorted(second - set(found))),
    )


def _at_positions(table: str, user_id: str, positions: Sequence[Position]) -> tuple[str, list[Any]]:
    """``table`` rows of ``:user_id`` at ``positions``: one OR term per session, each a key
    lookup (the user inside every term: SQLite then unions key searches instead of scanning the
    user), the seqs inlined (integers), the session ids bound; cheap to compile, the same SQL
    on SQLite and PostgreSQL."""
    by_session: dict[str, list[int]] = {}
    for session_id, seq in positions:
        by_session.setdefault(session_id, []).append(int(seq))
    terms: list[str] = []
    params: list[Any] = [sa.bindparam("user_id", user_id, type_=_SESSION_ID)]
    for n, (session_id, seqs) in enumerate(sorted(by_session.items())):
        listed = ", ".join(str(seq) for seq in sorted(set(seqs)))
        terms.append(
            f"({table}.user_id = :user_id AND {table}.session_id = :ps{n}"
            f" AND {table}.seq IN ({listed}))"
        )
        params.append(sa.bindparam(f"ps{n}", session_id, type_=_SESSION_ID))
    return "(" + " OR ".join(terms) + ")", params


_SESSION_ID = lexical_docs_table.c.session_id.type
_FETCH = """
SELECT ld.session_id, ld.seq, ld.doc_key, ld.created_ts, d.message_id, d.role, d.name,
    d.created_at, d.text,
    (SELECT MAX(o.seq) FROM tm_lexical_docs o
        WHERE o.user_id = ld.user_id AND o.session_id = ld.session_id AND o.seq < ld.seq)
        AS prev_seq,
    (SELECT MIN(o.seq) FROM tm_lexical_docs o
        WHERE o.user_id = ld.user_id AND o.session_id = ld.session_id AND o.seq > ld.seq)
        AS next_seq
FROM tm_lexical_docs ld
JOIN tm_documents d
    ON d.user_id = ld.user_id AND d.session_id = ld.session_id AND d.message_id = ld.message_id
WHERE {where}
"""


def _fetch(
    conn: Connection,
    user_id: str,
    positions: Iterable[Position],
    found: dict[Position, LexicalDocument],
) -> set[Position]:
    """Load the documents at ``positions`` into ``found``; returns their unseen neighbours."""
    wanted = sorted(set(positions) - set(found))
    unseen: set[Position] = set()
    d, ld = documents_table.c, lexical_docs_table.c
    for start in range(0, len(wanted), 500):
        where, params = _at_positions("ld", user_id, wanted[start : start + 500])
        query = (
            sa.text(_FETCH.format(where=where))
            .bindparams(*params)
            .columns(
                ld.session_id, ld.seq, ld.doc_key, ld.created_ts, d.message_id, d.role, d.name,
                d.created_at, d.text, sa.column("prev_seq", sa.Integer),
                sa.column("next_seq", sa.Integer),
            )
        )  # fmt: skip
        for r in conn.execute(query):
            document = StoredDocument(
                session_id=r.session_id, message_id=r.message_id, seq=int(r.seq), role=r.role,
                created_at=r.created_at, text=r.text, name=r.name,
            )  # fmt: skip
            found[(r.session_id, int(r.seq))] = LexicalDocument(
                document, r.doc_key, float(r.created_ts)
            )
            unseen.update((r.session_id, int(n)) for n in (r.prev_seq, r.next_seq) if n is not None)
    return unseen - set(found)


__all__ = ["LexicalDocument", "LexicalSearch", "Tier3Tables", "ensure_postings"]
