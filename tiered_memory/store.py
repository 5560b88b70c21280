"""Session state persistence: the raw log, the window/pending pointers, the summary, counters.

One schema for embedded SQLite (default, under ``path``) and any SQLAlchemy URL (PostgreSQL for
several app workers). The window and the pending messages are not copies: they are ranges of the
log, ``seq >= window_start`` and ``summarized_upto <= seq < window_start``. Every state change is one
transaction; the summary is committed with an optimistic version check so concurrent writers never
fork it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import StoreError
from .messages import Message, ToolCall
from .state import AppendResult, EvictionPlan, SessionState, StoredMessage

SCHEMA_VERSION = 1

_NUL, _ESC = "\x00", "\ue000"
_UNESCAPE = re.compile("\ue000(.)", re.DOTALL)


class _NulSafeString(sa.types.TypeDecorator[str]):
    """Text as given, on every database. PostgreSQL refuses NUL characters in text, so there
    (only) NUL is stored as ``U+E000 0`` and U+E000 itself as ``U+E000 U+E000``; reads undo it."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        if _NUL not in value and _ESC not in value:
            return value
        return value.replace(_ESC, _ESC + _ESC).replace(_NUL, _ESC + "0")

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or dialect.name != "postgresql" or _ESC not in value:
            return value
        return _UNESCAPE.sub(lambda m: _ESC if m.group(1) == _ESC else _NUL, value)


class _NulSafeText(_NulSafeString):
    impl = sa.Text
    cache_ok = True


metadata = sa.MetaData()

sessions_table = sa.Table(
    "tm_sessions",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("summary", _NulSafeText, nullable=False, default=""),
    sa.Column("summary_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("summarized_upto", sa.Integer, nullable=False, default=0),
    sa.Column("window_start", sa.Integer, nullable=False, default=0),
    sa.Column("next_seq", sa.Integer, nullable=False, default=0),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("history_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("summarizer_calls", sa.Integer, nullable=False, default=0),
    sa.Column("summarizer_failures", sa.Integer, nullable=False, default=0),
    sa.Column("summarizer_input_tokens", sa.Integer, nullable=False, default=0),
)

messages_table = sa.Table(
    "tm_messages",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("message_id", _NulSafeString(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", _NulSafeText, nullable=False),
    sa.Column("name", _NulSafeString(255)),
    sa.Column("tool_calls", _NulSafeText),
    sa.Column("tool_call_id", _NulSafeString(255)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("metadata", _NulSafeText),
    sa.Column("tokens", sa.Integer, nullable=False),
    sa.Column("indexed", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("user_id", "session_id", "message_id", name="tm_messages_id"),
)
sa.Index(  # the Tier-3 backlog query: filter and order both served by the index
    "tm_messages_backlog",
    messages_table.c.user_id,
    messages_table.c.indexed,
    messages_table.c.session_id,
    messages_table.c.seq,
)

leases_table = sa.Table(  # who may call the summarizer for a session right now
    "tm_leases",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("host", _NulSafeString(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

meta_table = sa.Table(
    "tm_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


Planner = Callable[[Sequence[StoredMessage]], EvictionPlan]


class SessionStore(Protocol):
    """Persistence of sessions. ``SqlSessionStore`` is the implementation for SQL databases."""

    def load(self, user_id: str, session_id: str) -> SessionState: ...

    def append(
        self,
        user_id: str,
        session_id: str,
        items: Sequence[StoredMessage],
        planner: Planner,
        index: bool = True,
    ) -> AppendResult: ...

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

    def mark_indexed(self, user_id: str, keys: Sequence[tuple[str, str]]) -> None: ...

    def clear(self, user_id: str, session_id: str) -> list[str]: ...

    def forget_message(self, user_id: str, message_id: str) -> list[tuple[str, str]]: ...

    def forget_user(self, user_id: str) -> list[tuple[str, str]]: ...

    def close(self) -> None: ...


def _dump_calls(calls: Sequence[ToolCall]) -> str | None:
    if not calls:
        return None
    return json.dumps([c.to_dict() for c in calls], ensure_ascii=False)


def _row_to_sized(row: Any) -> StoredMessage:
    calls = (
        tuple(ToolCall.from_dict(c) for c in json.loads(row.tool_calls)) if row.tool_calls else ()
    )
    message = Message.trusted(
        role=row.role,
        content=row.content,
        name=row.name,
        tool_calls=calls,
        tool_call_id=row.tool_call_id,
        id=row.message_id,
        created_at=datetime.fromisoformat(row.created_at),
        metadata=json.loads(row.metadata) if row.metadata else {},
    )
    return StoredMessage(message=message, tokens=row.tokens, seq=row.seq)


class SqlSessionStore:
    """Sessions in SQLite (embedded, WAL) or any SQLAlchemy database (PostgreSQL via psycopg)."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or _create_engine(url)
        self._lock = threading.Lock()
        _create_tables(self.engine, url)

    @classmethod
    def at_path(cls, path: str | Path) -> SqlSessionStore:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{directory / 'sessions.sqlite3'}")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # --- transactions -----------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(tm_read_only=True) as conn, conn.begin():
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc

    def _lock_session(self, conn: Connection, user_id: str, session_id: str) -> Any:
        """Create the session row if needed and lock it for this transaction."""
        conn.execute(
            _insert_ignore(conn, sessions_table).values(
                user_id=user_id,
                session_id=session_id,
                summary="",
                summary_tokens=0,
                summarized_upto=0,
                window_start=0,
                next_seq=0,
                version=0,
                history_tokens=0,
                summarizer_calls=0,
                summarizer_failures=0,
                summarizer_input_tokens=0,
            )
        )
        query = sa.select(sessions_table).where(
            sessions_table.c.user_id == user_id, sessions_table.c.session_id == session_id
        )
        if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already holds the write lock
            query = query.with_for_update()
        return conn.execute(query).one()

    # --- reads ---------------------------------------------------------------------------

    def _snapshot(
        self, conn: Connection, row: Any | None, user_id: str, session_id: str
    ) -> SessionState:
        if row is None:
            return SessionState(user_id=user_id, session_id=session_id)
        m = messages_table.c
        rows = conn.execute(
            sa.select(messages_table)
            .where(m.user_id == user_id, m.session_id == session_id, m.seq >= row.summarized_upto)
            .order_by(m.seq)
        ).all()
        items = [_row_to_sized(r) for r in rows]
        pending = tuple(i for i in items if i.seq < row.window_start)
        window = tuple(i for i in items if i.seq >= row.window_start)
        count = conn.execute(
            sa.select(sa.func.count()).where(m.user_id == user_id, m.session_id == session_id)
        ).scalar_one()
        return SessionState(
            user_id=user_id,
            session_id=session_id,
            summary=row.summary,
            summary_tokens=row.summary_tokens,
            summarized_upto=row.summarized_upto,
            window_start=row.window_start,
            next_seq=row.next_seq,
            version=row.version,
            history_tokens=row.history_tokens,
            summarizer_calls=row.summarizer_calls,
            summarizer_failures=row.summarizer_failures,
            summarizer_input_tokens=row.summarizer_input_tokens,
            window=window,
            pending=pending,
            messages_count=int(count),
        )

    def load(self, user_id: str, session_id: str) -> SessionState:
        with self._read() as conn:
            row = conn.execute(
                sa.select(sessions_table).where(
                    sessions_table.c.user_id == user_id, sessions_table.c.session_id == session_id
                )
            ).one_or_none()
            return self._snapshot(conn, row, user_id, session_id)

    def history(self, user_id: str, session_id: str) -> list[Message]:
        m = messages_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(messages_table)
                .where(m.user_id == user_id, m.session_id == session_id)
                .order_by(m.seq)
            ).all()
        return [_row_to_sized(r).message for r in rows]

    def message_ids(self, user_id: str, session_id: str | None = None) -> list[str]:
        m = messages_table.c
        query = sa.select(m.message_id).where(m.user_id == user_id)
        if session_id is not None:
            query = query.where(m.session_id == session_id)
        with self._read() as conn:
            return [r[0] for r in conn.execute(query)]

    def unindexed(self, user_id: str, limit: int = 256) -> list[tuple[str, StoredMessage]]:
        """Messages of ``user_id`` not yet in Tier 3 (after a crash or an embedder failure)."""
        m = messages_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(messages_table)
                .where(m.user_id == user_id, m.indexed == sa.false())
                .order_by(m.session_id, m.seq)
                .limit(limit)
            ).all()
        return [(r.session_id, _row_to_sized(r)) for r in rows]

    # --- writes --------------------------------------------------------------------------

    def append(
        self,
        user_id: str,
        session_id: str,
        items: Sequence[StoredMessage],
        planner: Planner,
        index: bool = True,
    ) -> AppendResult:
        """Store new messages and evict per ``planner``, atomically. Known ids are skipped.

        ``index=False`` stores them as needing no Tier-3 work (a session that opted out).
        """
        m = messages_table.c
        with self._write() as conn:
            row = self._lock_session(conn, user_id, session_id)
            ids = [item.message.id for item in items]
            existing: set[str] = set()
            if ids:
                existing = {
                    r[0]
                    for r in conn.execute(
                        sa.select(m.message_id).where(
                            m.user_id == user_id, m.session_id == session_id, m.message_id.in_(ids)
                        )
                    )
                }
            seq = row.next_seq
            added: list[StoredMessage] = []
            rows: list[dict[str, Any]] = []
            for item in items:
                message = item.message
                if message.id in existing:
                    continue
                existing.add(message.id)
                rows.append(
                    {
                        "user_id": user_id,
                        "session_id": session_id,
                        "seq": seq,
                        "message_id": message.id,
                        "role": message.role,
                        "content": message.content,
                        "name": message.name,
                        "tool_calls": _dump_calls(message.tool_calls),
                        "tool_call_id": message.tool_call_id,
                        "created_at": message.created_at.isoformat(),
                        "metadata": json.dumps(dict(message.metadata), ensure_ascii=False)
                        if message.metadata
                        else None,
                        "tokens": item.tokens,
                        "indexed": not index,
                    }
                )
                added.append(StoredMessage(message, item.tokens, seq))
                seq += 1
            if rows:
                conn.execute(sa.insert(messages_table), rows)
            window_rows = conn.execute(
                sa.select(messages_table)
                .where(m.user_id == user_id, m.session_id == session_id, m.seq >= row.window_start)
                .order_by(m.seq)
            ).all()
            window = [_row_to_sized(r) for r in window_rows]
            plan = planner(window)
            window_start = row.window_start
            if plan.evict_count:
                window_start = (
                    window[plan.evict_count].seq if plan.evict_count < len(window) else seq
                )
            conn.execute(
                sa.update(sessions_table)
                .where(
                    sessions_table.c.user_id == user_id,
                    sessions_table.c.session_id == session_id,
                )
                .values(
                    next_seq=seq,
                    window_start=window_start,
                    history_tokens=row.history_tokens + sum(r["tokens"] for r in rows),
                    version=row.version + (1 if rows or plan.evict_count else 0),
                )
            )
            fresh = conn.execute(
                sa.select(sessions_table).where(
                    sessions_table.c.user_id == user_id, sessions_table.c.session_id == session_id
                )
            ).one()
            state = self._snapshot(conn, fresh, user_id, session_id)
        return AppendResult(state=state, added=tuple(added), evicted=plan)

    def commit_summary(
        self,
        state: SessionState,
        summary: str,
        summary_tokens: int,
        summarized_upto: int,
        input_tokens: int,
    ) -> bool:
        """Store a new summary if nobody changed the summary since ``state`` was read."""
        s = sessions_table.c
        with self._write() as conn:
            row = self._lock_session(conn, state.user_id, state.session_id)
            if row.summarized_upto != state.summarized_upto or row.summary != state.summary:
                return False  # another writer summarized these messages first
            conn.execute(
                sa.update(sessions_table)
                .where(s.user_id == state.user_id, s.session_id == state.session_id)
                .values(
                    summary=summary,
                    summary_tokens=summary_tokens,
                    summarized_upto=summarized_upto,
                    version=row.version + 1,
                    summarizer_calls=row.summarizer_calls + 1,
                    summarizer_input_tokens=row.summarizer_input_tokens + input_tokens,
                )
            )
        return True

    def record_failure(self, user_id: str, session_id: str) -> None:
        s = sessions_table.c
        with self._write() as conn:
            conn.execute(
                sa.update(sessions_table)
                .where(s.user_id == user_id, s.session_id == session_id)
                .values(summarizer_failures=s.summarizer_failures + 1)
            )

    def claim_compaction(self, user_id: str, session_id: str, owner: str, ttl: float) -> bool:
        """Take or renew the session's summarizer lease for ``ttl`` seconds; False if taken.

        Only the holder calls the summarizer, so writers racing on one session never send the
        same messages twice (the summary commit is version-checked regardless). A lease is free
        once expired, or at once when its holder was a process of this host that has died.
        """
        lc = leases_table.c
        where = (lc.user_id == user_id, lc.session_id == session_id)
        now = time.time()
        with self._write() as conn:
            self._lock_session(conn, user_id, session_id)  # serializes claims of the session
            lease = conn.execute(sa.select(leases_table).where(*where)).one_or_none()
            if (
                lease is not None
                and lease.owner != owner
                and lease.expires_at > now
                and _process_alive(lease.host, lease.pid)
            ):
                return False
            values = {"owner": owner, "host": _HOST, "pid": os.getpid(), "expires_at": now + ttl}
            if lease is None:
                conn.execute(
                    sa.insert(leases_table).values(user_id=user_id, session_id=session_id, **values)
                )
            else:
                conn.execute(sa.update(leases_table).where(*where).values(**values))
        return True

    def release_compaction(self, user_id: str, session_id: str, owner: str) -> None:
        lc = leases_table.c
        with self._write() as conn:
            conn.execute(
                sa.delete(leases_table).where(
                    lc.user_id == user_id, lc.session_id == session_id, lc.owner == owner
                )
            )

    def mark_indexed(self, user_id: str, keys: Sequence[tuple[str, str]]) -> None:
        """Mark ``(session_id, message_id)`` pairs as stored in Tier 3."""
        if not keys:
            return
        m = messages_table.c
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

    def clear(self, user_id: str, session_id: str) -> list[str]:
        """Delete the session; returns the message ids it held (to delete from Tier 3)."""
        m, s = messages_table.c, sessions_table.c
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
                sa.delete(sessions_table).where(s.user_id == user_id, s.session_id == session_id)
            )
            lc = leases_table.c
            conn.execute(
                sa.delete(leases_table).where(lc.user_id == user_id, lc.session_id == session_id)
            )
        return ids

    def forget_message(self, user_id: str, message_id: str) -> list[tuple[str, str]]:
        """Delete a message from every session of ``user_id`` that holds it.

        A session whose summary already covered the message gets its summary reset, so the
        summary is re-derived from the remaining messages on the next compaction. Returns the
        ``(session_id, message_id)`` pairs removed.
        """
        m, s = messages_table.c, sessions_table.c
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
        return [(session_id, message_id) for session_id, _, _ in rows]

    def forget_user(self, user_id: str) -> list[tuple[str, str]]:
        """Delete every session and message of ``user_id``; returns what was removed."""
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
        return removed

    def close(self) -> None:
        self.engine.dispose()


_HOST = socket.gethostname()[:255]


def _process_alive(host: str, pid: int) -> bool:
    """False only for a process of this host that is known to be gone (a crashed writer)."""
    if host != _HOST or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def _insert_ignore(conn: Connection, table: sa.Table) -> Any:
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    raise StoreError(f"unsupported session store database {name!r} (use SQLite or PostgreSQL)")


def _is_duplicate_ddl(exc: Exception) -> bool:
    text = str(exc).lower()
    return "already exists" in text or "duplicate" in text


_DDL_LOCK = 0x746D_5F64_646C  # pg_advisory_xact_lock key of the table creation ("tm_ddl")


def _create_tables(engine: Engine, url: str) -> None:
    """Create the missing tables; safe when several workers start at once.

    On PostgreSQL the check-then-create runs under a transaction-scoped advisory lock, so
    workers take turns and each later one finds the tables made; on SQLite, BEGIN IMMEDIATE
    serializes it. A duplicate-object error (a creator that did not take the lock) is retried:
    the next check finds what the other one committed.
    """
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
                metadata.create_all(conn, checkfirst=True)
            return
        except sa.exc.SQLAlchemyError as exc:
            if attempt < 2 and _is_duplicate_ddl(exc):
                continue
            raise StoreError(f"cannot create the session tables at {url}: {exc}") from exc


def _create_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
            _configure_sqlite(engine)
            return engine
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open the session store {url!r}: {exc}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front (no deadlock-prone lock upgrade); readers use a snapshot.
        read_only = conn.get_execution_options().get("tm_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
