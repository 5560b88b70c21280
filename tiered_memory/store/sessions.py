"""Session state persistence: the raw log, the window/pending pointers, the summary, counters.

One schema for embedded SQLite (default, under ``path``) and any SQLAlchemy URL (PostgreSQL for
several app workers). The window and the pending messages are not copies: they are ranges of the
log, ``seq >= window_start`` and ``summarized_upto <= seq < window_start``. Every state change is one
transaction; the summary is committed with an optimistic version check so concurrent writers never
fork it.
"""

from __future__ import annotations

import functools
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
    """The stored message of a row of ``messages_table`` (whole, or ``_MESSAGE_COLUMNS``)."""
    return _stored(tuple(getattr(row, column.name) for column in _MESSAGE_COLUMNS))


def _stored(row: Any) -> StoredMessage:
    """The stored message of a row of ``_MESSAGE_COLUMNS``, read by position (the turn path
    reads the window twice a turn: name lookups on each row were a tenth of a turn)."""
    seq, message_id, role, content, name, tool_calls, tool_call_id, created_at, meta, tokens = row
    message = Message.trusted(
        role=role,
        content=content,
        name=name,
        tool_calls=tuple(ToolCall.from_dict(c) for c in json.loads(tool_calls))
        if tool_calls
        else (),
        tool_call_id=tool_call_id,
        id=message_id,
        created_at=datetime.fromisoformat(created_at),
        metadata=json.loads(meta) if meta else {},
    )
    return StoredMessage(message=message, tokens=tokens, seq=seq)


def _calls_closed(newest_first: Sequence[StoredMessage]) -> bool:
    """True when every tool result in these messages answers a call among them and the
    oldest of them is not a tool result: the list then starts a unit."""
    if not newest_first or newest_first[-1].message.role == "tool":
        return False
    issued = {c.id for i in newest_first for c in i.message.tool_calls}
    return all(i.message.tool_call_id in issued for i in newest_first if i.message.role == "tool")


# The turn path's statements, built once: building a statement (column comparisons, where,
# order_by) and computing its cache key cost more than running it (a fifth of an add + context
# turn at 2k window tokens). Values are bound at execution; each bind keeps its column's type.
_m, _s = messages_table.c, sessions_table.c
_IN_SESSION = (_m.user_id == sa.bindparam("b_user"), _m.session_id == sa.bindparam("b_session"))
# What a StoredMessage is made of (_stored): the other columns are not read.
_MESSAGE_COLUMNS = (
    _m.seq, _m.message_id, _m.role, _m.content, _m.name, _m.tool_calls, _m.tool_call_id,
    _m.created_at, _m.metadata, _m.tokens,
)  # fmt: skip
_SESSION_ROW = sa.select(sessions_table).where(
    _s.user_id == sa.bindparam("b_user"), _s.session_id == sa.bindparam("b_session")
)
_SESSION_ROW_LOCKED = _SESSION_ROW.with_for_update()
_FROM = _m.seq >= sa.bindparam("b_start")
_BEFORE = _m.seq < sa.bindparam("b_stop")
_RANGE_OPEN = sa.select(*_MESSAGE_COLUMNS).where(*_IN_SESSION, _FROM).order_by(_m.seq)
_RANGE = sa.select(*_MESSAGE_COLUMNS).where(*_IN_SESSION, _FROM, _BEFORE).order_by(_m.seq)
_NEWEST = sa.select(*_MESSAGE_COLUMNS).where(*_IN_SESSION, _FROM, _BEFORE).order_by(_m.seq.desc())
_COUNT = sa.select(sa.func.count()).where(*_IN_SESSION)
_COUNT_RANGE = sa.select(sa.func.count()).where(*_IN_SESSION, _FROM, _BEFORE)
_TOTALS_RANGE = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_m.tokens), 0)).where(
    *_IN_SESSION, _FROM, _BEFORE
)
_KNOWN_IDS = sa.select(_m.message_id).where(
    *_IN_SESSION, _m.message_id.in_(sa.bindparam("b_ids", expanding=True))
)
_INSERT_MESSAGES = sa.insert(messages_table)
_AFTER_APPEND = (
    sa.update(sessions_table)
    .where(_s.user_id == sa.bindparam("b_user"), _s.session_id == sa.bindparam("b_session"))
    .values(
        next_seq=sa.bindparam("b_next_seq"),
        window_start=sa.bindparam("b_window_start"),
        history_tokens=sa.bindparam("b_history_tokens"),
        version=sa.bindparam("b_version"),
        behind_since=sa.bindparam("b_behind_since"),
    )
)


def _keys(user_id: str, session_id: str, **values: Any) -> dict[str, Any]:
    return {"b_user": user_id, "b_session": session_id, **values}


def _read_range(
    conn: Connection, keys: dict[str, Any], start: int, stop: int | None
) -> list[StoredMessage]:
    if stop is None:
        rows = conn.execute(_RANGE_OPEN, {**keys, "b_start": start}).all()
    else:
        rows = conn.execute(_RANGE, {**keys, "b_start": start, "b_stop": stop}).all()
    return [_stored(r) for r in rows]


@functools.cache  # a few page sizes: 32, 64, ...
def _tail_page(page: int) -> Any:
    return _NEWEST.limit(page)


def _read_tail(
    conn: Connection, keys: dict[str, Any], start: int, stop: int, tokens: int
) -> list[StoredMessage]:
    """The newest messages of ``[start, stop)``: more than ``tokens`` tokens (or all), read
    back further until no tool result in them answers a call issued before them."""
    newest_first: list[StoredMessage] = []
    total, upper, page = 0, stop, 32
    while upper > start:
        rows = conn.execute(_tail_page(page), {**keys, "b_start": start, "b_stop": upper}).all()
        if not rows:
            break
        newest_first.extend(_stored(r) for r in rows)
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
        self._keys = _keys(self.user_id, self.session_id)

    def append(self, items: Sequence[StoredMessage], *, index: bool) -> tuple[StoredMessage, ...]:
        """Store the messages whose id this session does not hold yet; returns them with seqs.

        ``index=False`` stores them as needing no Tier-3 work (a session that opted out).
        """
        ids = [item.message.id for item in items]
        existing: set[str] = set()
        if ids:
            known = self._conn.execute(_KNOWN_IDS, {**self._keys, "b_ids": ids})
            existing = {r[0] for r in known}
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
            self._conn.execute(_INSERT_MESSAGES, rows)
            self.added_tokens += sum(r["tokens"] for r in rows)
            self.changed = True
        return tuple(added)

    def window(self) -> list[StoredMessage]:
        return _read_range(self._conn, self._keys, self.window_start, None)

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
        if self.changed:
            self._conn.execute(
                _AFTER_APPEND,
                {
                    **self._keys,
                    "b_next_seq": self.next_seq,
                    "b_window_start": self.window_start,
                    "b_history_tokens": row.history_tokens + self.added_tokens,
                    "b_version": row.version + 1,
                    "b_behind_since": behind_since,
                },
            )
        self.behind_since: float | None = behind_since
        self.summary_tokens: int = row.summary_tokens
        if self.window_start <= row.summarized_upto:
            return 0
        pending = {**self._keys, "b_start": row.summarized_upto, "b_stop": self.window_start}
        return int(self._conn.execute(_COUNT_RANGE, pending).scalar_one())


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
        # SQLite's BEGIN IMMEDIATE already holds the write lock
        query = _SESSION_ROW if self.is_sqlite else _SESSION_ROW_LOCKED
        keys = _keys(user_id, session_id)
        row = conn.execute(query, keys).one_or_none()
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
        return conn.execute(query, keys).one()

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
        keys = _keys(user_id, session_id)
        row = conn.execute(_SESSION_ROW, keys).one_or_none()
        if row is None:
            return SessionState(user_id=user_id, session_id=session_id)
        window = _read_range(conn, keys, row.window_start, None)
        pending_total: tuple[int, int] | None = None
        if pending_tail_tokens is None:
            pending = _read_range(conn, keys, row.summarized_upto, row.window_start)
        else:  # the window counts toward the tokens asked for: it is shown before any pending
            budget = max(0, pending_tail_tokens - sum(item.tokens for item in window))
            pending = _read_tail(conn, keys, row.summarized_upto, row.window_start, budget)
            count, tokens = conn.execute(
                _TOTALS_RANGE, {**keys, "b_start": row.summarized_upto, "b_stop": row.window_start}
            ).one()
            pending_total = (int(count), int(tokens))
        count = conn.execute(_COUNT, keys).scalar_one()
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
