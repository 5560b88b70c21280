"""The session store's Tier-3 side: what waits for indexing, the documents, lexical search.

A message is indexed when its document is in ``tm_documents`` (and its vector in the vector
store). Every document write and every erasure also writes the document's BM25 postings
(``tm_postings``, ``tm_lexical_docs``, ``tm_lexical_users``) in the same transaction, and bumps
the user's lexical version. Recall reads the user's postings as a :class:`~tiered_memory.recall.
lexical.Lexicon`: a process keeps the lexicons of the users it recalled for lately (bounded, least
recently used out), and every recall first reads the user's version in the same snapshot: the
documents added since are read and appended, any removal makes it read anew. So what one process
writes or forgets is what every other process's next recall searches. The tokenizer and the
formula are ``recall.lexical``'s (scores equal the in-memory reference, ``LexicalIndex``).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import StoreError
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

if TYPE_CHECKING:
    from ..recall.lexical import DocumentRow, Lexicon, LexiconVersion, PostingRow

Position = tuple[str, int]  # (session_id, seq): a document of one user
_INSERT_BATCH = 5_000  # rows per executemany


DEFAULT_LEXICON_CACHE_BYTES = 128 * 2**20


class LexiconCache:
    """The lexicons of the users a process recalled for lately, within ``budget`` bytes (the
    least recently used go first; one bigger than the budget is used but not kept)."""

    def __init__(self, budget: int = DEFAULT_LEXICON_CACHE_BYTES) -> None:
        self.budget = budget
        self._entries: OrderedDict[str, Lexicon] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, user_id: str) -> Lexicon | None:
        with self._lock:
            lexicon = self._entries.get(user_id)
            if lexicon is not None:
                self._entries.move_to_end(user_id)
            return lexicon

    def put(self, user_id: str, lexicon: Lexicon) -> None:
        with self._lock:
            old = self._entries.pop(user_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            if lexicon.nbytes > self.budget:
                return
            self._entries[user_id] = lexicon
            self._bytes += lexicon.nbytes
            while self._bytes > self.budget:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


class Tier3Tables:
    """Mixed into :class:`SqlSessionStore`: Tier-3 bookkeeping, and erasure across tiers."""

    lexicons: LexiconCache

    def _snapshot(self) -> AbstractContextManager[Connection]:
        """A read transaction whose statements all see one state (repeatable read)."""
        raise NotImplementedError

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
                wanted = sorted(set(keys))
                for start in range(0, len(wanted), 200):
                    rows += conn.execute(_documents_at(user_id, wanted[start : start + 200])).all()
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

    def lexicon(self, user_id: str, query_terms: Sequence[str] = ()) -> Lexicon:
        """The user's BM25 lexicon as the store holds it now, with the postings of
        ``query_terms`` loaded (see the module docstring).

        One snapshot reads the user's lexical version, what changed since the cached lexicon
        if any, and the postings of the terms it has not loaded. Postings of a user from an
        older store are built first.
        """
        cached = self.lexicons.get(user_id)
        for attempt in (0, 1):
            with self._snapshot() as conn:
                state = _state(conn, user_id)
                if state is not None:
                    lexicon = _refresh(conn, user_id, state, cached)
                    missing = lexicon.missing(query_terms)
                    if missing:
                        lexicon.load_terms(missing, _term_rows(conn, user_id, missing))
                    break
            if attempt:  # pragma: no cover - ensure_postings always leaves a row
                raise StoreError(f"the lexical statistics of user {user_id!r} are missing")
            with self._write() as conn:
                ensure_postings(conn, user_id)
        if lexicon is not cached or missing:
            self.lexicons.put(user_id, lexicon)  # (again: its size grew)
        return lexicon

    def lexical_stats(self, user_id: str) -> tuple[int, int] | None:
        """``(documents, total_length)`` of the user's BM25, or None if not built yet."""
        with self._read() as conn:
            state = _state(conn, user_id)
        return None if state is None else (state.documents, state.total_length)

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


def _documents_at(user_id: str, keys: Sequence[tuple[str, str]]) -> Any:
    """``tm_documents`` rows of ``keys``: one OR term per key with the user inside it (SQLite
    then does key lookups; with the user outside it scans the user's documents). Written as text
    with typed parameters: building as many SQLAlchemy expressions cost more than the query."""
    d = documents_table.c
    kind = d.session_id.type
    terms, params = [], [sa.bindparam("u", user_id, type_=kind)]
    for n, (session_id, message_id) in enumerate(keys):
        terms.append(f"(user_id = :u AND session_id = :s{n} AND message_id = :m{n})")
        params += [
            sa.bindparam(f"s{n}", session_id, type_=kind),
            sa.bindparam(f"m{n}", message_id, type_=kind),
        ]
    columns = ", ".join(c.name for c in documents_table.c)
    sql = f"SELECT {columns} FROM {documents_table.name} WHERE " + " OR ".join(terms)
    return sa.text(sql).bindparams(*params).columns(*documents_table.c)


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
            user_id=user_id, documents=-1, total_length=0, epoch=uuid.uuid4().hex
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
        generation = _count(conn, user_id, len(docs), total)
        for row in docs:
            row["generation"] = generation
        _insert(conn, lexical_docs_table, docs)
        _insert(conn, postings_table, postings)


def _count(
    conn: Connection, user_id: str, documents: int, length: int, *, removal: bool = False
) -> int:
    """Add to the user's statistics and bump its lexical version (noting a removal); returns
    the new version: the generation of the documents written with it."""
    u = lexical_users_table.c
    changes: dict[str, Any] = {
        "documents": u.documents + documents,
        "total_length": u.total_length + length,
        "version": u.version + 1,
    }
    if removal:
        changes["removed_at"] = u.version + 1  # SET reads the row as it was: the new version
    conn.execute(sa.update(lexical_users_table).where(u.user_id == user_id).values(**changes))
    return int(conn.execute(sa.select(u.version).where(u.user_id == user_id)).scalar_one())


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
    _count(conn, user_id, -int(gone[0]), -int(gone[1] or 0), removal=True)


# --- lexical search: the user's lexicon, read from the postings ---------------------------------


def _state(conn: Connection, user_id: str) -> LexiconVersion | None:
    from ..recall.lexical import LexiconVersion

    u = lexical_users_table.c
    row = conn.execute(
        sa.select(u.documents, u.total_length, u.version, u.removed_at, u.epoch).where(
            u.user_id == user_id
        )
    ).one_or_none()
    if row is None or row.documents < 0:
        return None
    return LexiconVersion(
        row.epoch or "", int(row.version), int(row.removed_at), int(row.documents),
        int(row.total_length),
    )  # fmt: skip


def _refresh(
    conn: Connection, user_id: str, state: LexiconVersion, cached: Lexicon | None
) -> Lexicon:
    """``cached`` if still current, else extended by what was added since, else read anew."""
    from ..recall.lexical import Lexicon

    if cached is not None and cached.state == state:
        return cached
    if (
        cached is not None
        and (cached.state.epoch, cached.state.removed_at) == (state.epoch, state.removed_at)
        and state.version > cached.state.version
    ):
        since = cached.state.version
        extended = cached.extended(
            state, _document_rows(conn, user_id, since), _posting_rows(conn, user_id, since)
        )
        if len(extended) == state.documents:
            return extended
    return Lexicon.build(state, _document_rows(conn, user_id, None))


def _driver_marker(conn: Connection) -> str | None:
    """The driver's placeholder for SQL read past SQLAlchemy ("?" or "%s"); None for a
    paramstyle these reads do not write (they then go through SQLAlchemy)."""
    style = conn.dialect.paramstyle
    return "?" if style == "qmark" else "%s" if style in ("format", "pyformat") else None


def _document_rows(conn: Connection, user_id: str, since: int | None) -> list[DocumentRow]:
    """The user's documents as the lexicon holds them (those added after version ``since``).

    Read through the driver, like :func:`_term_rows`: SQLAlchemy's per-row processing was most of
    a cold recall's lexicon read (12 of 18 ms at 1,000 documents)."""
    ld, d = lexical_docs_table.c, documents_table.c
    marker = _driver_marker(conn)
    if marker is None:  # pragma: no cover
        query = (
            sa.select(
                ld.session_id, ld.seq, ld.doc_key, ld.message_id, ld.length, ld.created_ts,
                d.role, ld.generation, d.name,
            )
            .select_from(
                lexical_docs_table.join(
                    documents_table,
                    sa.and_(
                        d.user_id == ld.user_id, d.session_id == ld.session_id,
                        d.message_id == ld.message_id,
                    ),
                )
            )
            .where(ld.user_id == user_id)
        )  # fmt: skip
        if since is not None:
            query = query.where(ld.generation > since)
        rows: Sequence[Any] = conn.execute(query).all()
    else:
        encode = ld.user_id.type.process_bind_param  # type: ignore[attr-defined]
        sql = (
            "SELECT ld.session_id, ld.seq, ld.doc_key, ld.message_id, ld.length, ld.created_ts,"
            f" d.role, ld.generation, d.name FROM {lexical_docs_table.name} ld"
            f" JOIN {documents_table.name} d ON d.user_id = ld.user_id"
            " AND d.session_id = ld.session_id AND d.message_id = ld.message_id"
            f" WHERE ld.user_id = {marker}"
        )
        params: tuple[Any, ...] = (encode(user_id, conn.dialect),)
        if since is not None:
            sql += f" AND ld.generation > {marker}"
            params += (since,)
        rows = conn.exec_driver_sql(sql, params).fetchall()
        if conn.dialect.name == "postgresql":  # the NUL-safe ids, decoded as SQLAlchemy would
            decode = ld.session_id.type.process_result_value  # type: ignore[attr-defined]
            rows = [
                (decode(r[0], conn.dialect), r[1], r[2], decode(r[3], conn.dialect), *r[4:8],
                 decode(r[8], conn.dialect))
                for r in rows
            ]  # fmt: skip
    return [
        (r[0], int(r[1]), r[2], r[3], int(r[4]), float(r[5]), r[6], int(r[7]), r[8] or "")
        for r in rows
    ]


def _posting_rows(conn: Connection, user_id: str, since: int) -> list[PostingRow]:
    """Every posting of the documents added after version ``since``."""
    p, ld = postings_table.c, lexical_docs_table.c
    query = (
        sa.select(p.term, p.session_id, p.seq, p.tf)
        .select_from(
            postings_table.join(
                lexical_docs_table,
                sa.and_(ld.user_id == p.user_id, ld.session_id == p.session_id, ld.seq == p.seq),
            )
        )
        .where(p.user_id == user_id, ld.generation > since)
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in conn.execute(query).all()]


def _term_rows(conn: Connection, user_id: str, wanted: Sequence[str]) -> list[PostingRow]:
    """Every posting of the ``wanted`` terms (a key range each). Read through the driver: at
    100k documents a few terms have tens of thousands of postings, and SQLAlchemy's per-row
    processing cost more than the query; session ids are decoded once per distinct value."""
    p = postings_table.c
    marker = _driver_marker(conn)
    if marker is None:  # pragma: no cover
        query = sa.select(p.term, p.session_id, p.seq, p.tf).where(
            p.user_id == user_id, p.term.in_(list(wanted))
        )
        return cast("list[PostingRow]", conn.execute(query).all())
    encode = p.user_id.type.process_bind_param  # type: ignore[attr-defined]
    decode = p.session_id.type.process_result_value  # type: ignore[attr-defined]
    terms = ", ".join(marker for _ in wanted)
    sql = (
        f"SELECT term, session_id, seq, tf FROM {postings_table.name}"
        f" WHERE user_id = {marker} AND term IN ({terms})"
    )
    rows = conn.exec_driver_sql(sql, (encode(user_id, conn.dialect), *wanted)).fetchall()
    names = {raw: decode(raw, conn.dialect) for raw in {r[1] for r in rows}}
    if all(raw == name for raw, name in names.items()):
        return cast("list[PostingRow]", rows)
    return [(r[0], names[r[1]], r[2], r[3]) for r in rows]


__all__ = ["DEFAULT_LEXICON_CACHE_BYTES", "LexiconCache", "Tier3Tables", "ensure_postings"]
