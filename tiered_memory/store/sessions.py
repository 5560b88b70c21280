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
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import StoreError, mask_credentials
from ..messages import Message, ToolCall
from ..state import SessionState, StoredMessage
from .schema import (
    create_engine,
    create_tables,
    insert_ignore,
    leases_table,
    messages_table,
    sessions_table,
)
from .tier3 import DEFAULT_LEXICON_CACHE_BYTES, LexiconCache, Tier3Tables

DEFAULT_TIMEOUT = 30.0


def _dump_calls(calls: Sequence[ToolCall]) -> str | None:
    if not calls:
        return None
    return json.dumps([c.to_dict() for c in calls], ensure_ascii=False)


def row_to_stored(row: Any) -> StoredMessage:
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


def _calls_closed(newest_first: Sequence[StoredMessage]) -> bool:
    """True when every tool result in these messages answers a call among them and the
    oldest of them is not a tool result: the list then starts a unit."""
    if not newest_first or newest_first[-1].message.role == "tool":
        return False
    issued = {c.id for i in newest_first for c in i.message.tool_calls}
    return all(i.message.tool_call_id in issued for i in newest_first if i.message.role == "tool")


def _read_range(
    conn: Connection, session: tuple[Any, ...], start: int, stop: int | None
) -> list[StoredMessage]:
    m = messages_table.c
    query = sa.select(messages_table).where(*session, m.seq >= start)
    if stop is not None:
        query = query.where(m.seq < stop)
    return [row_to_stored(r) for r in conn.execute(query.order_by(m.seq)).all()]


def _read_tail(
    conn: Connection, session: tuple[Any, ...], start: int, stop: int, tokens: int
) -> list[StoredMessage]:
    """The newest messages of ``[start, stop)``: more than ``tokens`` tokens (or all), read
    back further until no tool result in them answers a call issued before them."""
    m = messages_table.c
    newest_first: list[StoredMessage] = []
    total, upper, page = 0, stop, 32
    while upper > start:
        rows = conn.execute(
            sa.select(messages_table)
            .where(*session, m.seq >= start, m.seq < upper)
            .order_by(m.seq.desc())
            .limit(page)
        ).all()
        if not rows:
            break
        newest_first.extend(row_to_stored(r) for r in rows)
        total += sum(r.tokens for r in rows)
        upper = rows[-1].seq
        if total > tokens and _calls_closed(newest_first):
            break
        page *= 2
    return newest_first[::-1]


class SessionTransaction:
    """One session's write transaction: append, look at the window, evict — then commit.

    The caller makes the decisions (``window.plan_eviction``) between these calls; the store
    never calls back into the planner.
    """

    def __init__(self, conn: Connection, row: Any) -> None:
        self._conn = conn
        self._row = row
        self.user_id: str = row.user_id
        self.session_id: str = row.session_id
        self.next_seq: int = row.next_seq
        self.window_start: int = row.window_start
        self.added_tokens = 0
        self.changed = False

    def append(self, items: Sequence[StoredMessage], *, index: bool) -> tuple[StoredMessage, ...]:
        """Store the messages whose id this session does not hold yet; returns them with seqs.

        ``index=False`` stores them as needing no Tier-3 work (a session that opted out).
        """
        m = messages_table.c
        ids = [item.message.id for item in items]
        existing: set[str] = set()
        if ids:
            existing = {
                r[0]
                for r in self._conn.execute(
                    sa.select(m.message_id).where(
                        m.user_id == self.user_id,
                        m.session_id == self.session_id,
                        m.message_id.in_(ids),
                    )
                )
            }
        added: list[StoredMessage] = []
        rows: list[dict[str, Any]] = []
        for item in items:
            message = item.message
            if message.id in existing:
                continue
            existing.add(message.id)
            rows.append(
                {
                    "user_id": self.user_id,
                    "session_id": self.session_id,
                    "seq": self.next_seq,
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
            added.append(StoredMessage(message, item.tokens, self.next_seq))
            self.next_seq += 1
        if rows:
            self._conn.execute(sa.insert(messages_table), rows)
            self.added_tokens += sum(r["tokens"] for r in rows)
            self.changed = True
        return tuple(added)

    def window(self) -> list[StoredMessage]:
        m = messages_table.c
        session = (m.user_id == self.user_id, m.session_id == self.session_id)
        return _read_range(self._conn, session, self.window_start, None)

    def evict(self, window: Sequence[StoredMessage], count: int) -> None:
        """Move the first ``count`` messages of ``window`` out of it (to the summarizer)."""
        if count <= 0:
            return
        self.window_start = window[count].seq if count < len(window) else self.next_seq
        self.changed = True

    def finish(self) -> int:
        """Write the session row; returns how many messages are pending after this write.

        Sets ``behind_since`` and ``summary_tokens`` for the caller. Only counts are read here:
        the append path never loads the pending messages themselves.
        """
        row = self._row
        behind_since = row.behind_since
        if self.window_start > row.window_start and row.summarized_upto >= row.window_start:
            behind_since = time.time()  # the summary was caught up until this eviction
        s, m = sessions_table.c, messages_table.c
        if self.changed:
            self._conn.execute(
                sa.update(sessions_table)
                .where(s.user_id == self.user_id, s.session_id == self.session_id)
                .values(
                    next_seq=self.next_seq,
                    window_start=self.window_start,
                    history_tokens=row.history_tokens + self.added_tokens,
                    version=row.version + 1,
                    behind_since=behind_since,
                )
            )
        self.behind_since: float | None = behind_since
        self.summary_tokens: int = row.summary_tokens
        if self.window_start <= row.summarized_upto:
            return 0
        return int(
            self._conn.execute(
                sa.select(sa.func.count()).where(
                    m.user_id == self.user_id,
                    m.session_id == self.session_id,
                    m.seq >= row.summarized_upto,
                    m.seq < self.window_start,
                )
            ).scalar_one()
        )


class SqlSessionStore(Tier3Tables):
    """Sessions in SQLite (embedded, WAL) or any SQLAlchemy database (PostgreSQL via psycopg).

    Args:
        url: SQLAlchemy URL.
        timeout: the most seconds any single database wait may take (lock, connect, statement);
            past it the call raises :class:`StoreError` instead of hanging.
        lexicon_cache_bytes: memory for the BM25 lexicons of the users recalled for lately.
    """

    def __init__(
        self,
        url: str,
        *,
        engine: Engine | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        lexicon_cache_bytes: int = DEFAULT_LEXICON_CACHE_BYTES,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.lexicons = LexiconCache(lexicon_cache_bytes)
        self.engine = engine or create_engine(url, timeout)
        self._lock = threading.Lock()
        create_tables(self.engine, url)

    @classmethod
    def at_path(cls, path: str | Path, timeout: float = DEFAULT_TIMEOUT) -> SqlSessionStore:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{directory / 'sessions.sqlite3'}", timeout=timeout)

    def __repr__(self) -> str:
        return f"SqlSessionStore({mask_credentials(self.url)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # --- transactions -----------------------------------------------------------------

    def _failed(self, what: str, exc: Exception) -> StoreError:
        hint = "" if self.is_sqlite else f" (is the database at {mask_credentials(self.url)} up?)"
        return StoreError(f"session store {what} failed{hint}: {exc}")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed("write", exc) from exc

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        # SQLite's read transaction is a snapshot already; PostgreSQL's default is not
        options: dict[str, Any] = {"tm_read_only": True}
        if not self.is_sqlite:
            options["isolation_level"] = "REPEATABLE READ"
        try:
            with self.engine.connect().execution_options(**options) as conn, conn.begin():
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed("read", exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(tm_read_only=True) as conn, conn.begin():
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed("read", exc) from exc

    def _lock_session(self, conn: Connection, user_id: str, session_id: str) -> Any:
        """Lock the session row for this transaction, creating it if needed."""
        query = sa.select(sessions_table).where(
            sessions_table.c.user_id == user_id, sessions_table.c.session_id == session_id
        )
        if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already holds the write lock
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is not None:
            return row
        conn.execute(
            insert_ignore(conn, sessions_table).values(
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
        return conn.execute(query).one()

    @contextmanager
    def transaction(self, user_id: str, session_id: str) -> Iterator[SessionTransaction]:
        """Lock the session for one atomic change (see :class:`SessionTransaction`)."""
        with self._write() as conn:
            row = self._lock_session(conn, user_id, session_id)
            yield SessionTransaction(conn, row)

    # --- reads ---------------------------------------------------------------------------

    def _load(
        self, conn: Connection, user_id: str, session_id: str, pending_tail_tokens: int | None
    ) -> SessionState:
        s, m = sessions_table.c, messages_table.c
        row = conn.execute(
            sa.select(sessions_table).where(s.user_id == user_id, s.session_id == session_id)
        ).one_or_none()
        if row is None:
            return SessionState(user_id=user_id, session_id=session_id)
        session = (m.user_id == user_id, m.session_id == session_id)
        window = _read_range(conn, session, row.window_start, None)
        pending_total: tuple[int, int] | None = None
        if pending_tail_tokens is None:
            pending = _read_range(conn, session, row.summarized_upto, row.window_start)
        else:  # the window counts toward the tokens asked for: it is shown before any pending
            budget = max(0, pending_tail_tokens - sum(item.tokens for item in window))
            pending = _read_tail(conn, session, row.summarized_upto, row.window_start, budget)
            count, tokens = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(m.tokens), 0)).where(
                    *session, m.seq >= row.summarized_upto, m.seq < row.window_start
                )
            ).one()
            pending_total = (int(count), int(tokens))
        count = conn.execute(sa.select(sa.func.count()).where(*session)).scalar_one()
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
            window=tuple(window),
            pending=tuple(pending),
            messages_count=int(count),
            behind_since=row.behind_since,
            pending_total=pending_total,
        )

    def load(
        self, user_id: str, session_id: str, *, pending_tail_tokens: int | None = None
    ) -> SessionState:
        """The session's state. With ``pending_tail_tokens`` (what a prompt can hold of the
        messages the summary lacks, window included) only the newest pending messages are read:
        more than that many tokens together with the window, in whole tool units (see
        :class:`SessionState`)."""
        with self._read() as conn:
            return self._load(conn, user_id, session_id, pending_tail_tokens)

    def history(self, user_id: str, session_id: str) -> list[Message]:
        m = messages_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(messages_table)
                .where(m.user_id == user_id, m.session_id == session_id)
                .order_by(m.seq)
            ).all()
        return [row_to_stored(r).message for r in rows]

    def message_ids(self, user_id: str, session_id: str | None = None) -> list[str]:
        m = messages_table.c
        query = sa.select(m.message_id).where(m.user_id == user_id)
        if session_id is not None:
            query = query.where(m.session_id == session_id)
        with self._read() as conn:
            return [r[0] for r in conn.execute(query)]

    # --- the summary -------------------------------------------------------------------

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
            caught_up = summarized_upto >= row.window_start
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
                    behind_since=None if caught_up else row.behind_since,
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

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database (no-op elsewhere); the background
        worker calls it between turns so that a user's commit rarely has to."""
        if not self.is_sqlite:
            return
        try:
            raw = self.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                raw.close()
        except Exception as exc:
            raise self._failed("checkpoint", exc) from exc

    def close(self) -> None:
        self.lexicons.clear()
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
