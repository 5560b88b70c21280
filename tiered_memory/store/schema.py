"""The SQL schema of the session store, engines with bounded timeouts, and credential masking."""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import StoreError, mask_credentials

SCHEMA_VERSION = 4

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
    sa.Column("behind_since", sa.Float, nullable=True),  # first eviction the summary lacks
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

documents_table = sa.Table(  # Tier 3 as text: what the vector store holds, for BM25 and rebuilds
    "tm_documents",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("message_id", _NulSafeString(255), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", _NulSafeString(255)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("text", _NulSafeText, nullable=False),
)

sa.Index(  # a document's session neighbours, by position
    "tm_documents_position", documents_table.c.user_id, documents_table.c.session_id,
    documents_table.c.seq,
)  # fmt: skip

# Lexical search (BM25) in the store, written in the same transaction as tm_documents: what one
# process writes or forgets is what every other process's next recall searches.
lexical_users_table = sa.Table(  # a user's BM25 statistics; no row: postings not built yet
    "tm_lexical_users",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("documents", sa.Integer, nullable=False),
    sa.Column("total_length", sa.BigInteger, nullable=False),
    # every change bumps version; removed_at is the version of the last removal; epoch is new
    # when the row is (a forgotten user who comes back): what a cached lexicon is checked against
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("removed_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("epoch", sa.String(32), nullable=True),
)

lexical_docs_table = sa.Table(  # each Tier-3 document as BM25 and the ranking see it
    "tm_lexical_docs",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("message_id", _NulSafeString(255), nullable=False),
    sa.Column("doc_key", sa.String(64), nullable=False),  # recall.records.record_key
    sa.Column("length", sa.Integer, nullable=False),
    sa.Column("created_ts", sa.Float, nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),  # user's version
)
sa.Index("tm_lexical_docs_key", lexical_docs_table.c.user_id, lexical_docs_table.c.doc_key)
sa.Index(
    "tm_lexical_docs_generation", lexical_docs_table.c.user_id, lexical_docs_table.c.generation
)

postings_table = sa.Table(  # (user, term) -> the documents holding it, with what BM25 needs
    "tm_postings",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("term", sa.String(64), primary_key=True),  # recall.lexical.terms: no NUL
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tf", sa.Integer, nullable=False),
    sa.Column("length", sa.Integer, nullable=False),  # of the document (no join when scoring)
    sa.Column("created_ts", sa.Float, nullable=False),  # for since/until, likewise
    sqlite_with_rowid=False,  # clustered by the key: a term's postings are contiguous
)
sa.Index(  # erasing a document's postings; user_id last, so that no plan scans all of a user's
    # postings through it to save the GROUP BY of a search (SQLite without statistics did)
    "tm_postings_position", postings_table.c.session_id, postings_table.c.seq,
    postings_table.c.user_id,
)  # fmt: skip

vault_table = sa.Table(  # secrets of secrets="vault": Fernet ciphertext, never the value
    "tm_vault",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("placeholder", sa.String(64), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

facts_table = sa.Table(  # facts about a user with when they held (tiered_memory.facts)
    "tm_facts",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("fact_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("attribute", _NulSafeString(255), nullable=False),
    sa.Column("value", _NulSafeText, nullable=False),
    sa.Column("valid_from", sa.Float, nullable=False),
    sa.Column("valid_to", sa.Float, nullable=True),  # None: still true
    sa.Column("recorded_at", sa.Float, nullable=False),
    sa.Column("session_id", _NulSafeString(255), nullable=False),
    sa.Column("message_id", _NulSafeString(255), nullable=False),
)
sa.Index("tm_facts_key", facts_table.c.user_id, facts_table.c.attribute)

fact_marks_table = sa.Table(  # per session: the log position below which facts were extracted
    "tm_fact_marks",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("session_id", _NulSafeString(255), primary_key=True),
    sa.Column("upto", sa.Integer, nullable=False),
)

fact_versions_table = sa.Table(  # per user: bumped by every write of its facts (never deleted)
    "tm_fact_versions",
    metadata,
    sa.Column("user_id", _NulSafeString(255), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("epoch", sa.String(32), nullable=False),  # new with the row: a new database
)

meta_table = sa.Table(
    "tm_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def insert_ignore(conn: Connection, table: sa.Table) -> Any:
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


def create_tables(engine: Engine, url: str) -> None:
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
                _migrate(conn)
            return
        except sa.exc.SQLAlchemyError as exc:
            if attempt < 2 and _is_duplicate_ddl(exc):
                continue
            raise StoreError(
                f"cannot create the session tables at {mask_credentials(url)} "
                f"(is the database up and reachable?): {exc}"
            ) from exc


def _migrate(conn: Connection) -> None:
    """Bring a store made by an older version up to this schema (columns added, never dropped)."""
    inspector = sa.inspect(conn)
    columns = {c["name"] for c in inspector.get_columns("tm_sessions")}
    if "behind_since" not in columns:
        conn.execute(sa.text("ALTER TABLE tm_sessions ADD COLUMN behind_since FLOAT"))
    # Version 2 kept an in-memory BM25 per process in sync through this log of keys; the store's
    # postings replaced both. Older users' postings are built on their first recall or write
    # (tier3.ensure_postings): a user without a tm_lexical_users row has none yet.
    if inspector.has_table("tm_tier3_changes"):
        conn.execute(sa.text("DROP TABLE tm_tier3_changes"))
    # Version 4 versions each user's postings, for the lexicons recall caches (store.tier3).
    added = {
        "tm_lexical_users": ("version BIGINT NOT NULL DEFAULT 0",
                             "removed_at BIGINT NOT NULL DEFAULT 0", "epoch VARCHAR(32)"),
        "tm_lexical_docs": ("generation BIGINT NOT NULL DEFAULT 0",),
    }  # fmt: skip
    for table, definitions in added.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for definition in definitions:
            if definition.split()[0] not in have:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {definition}"))
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS tm_lexical_docs_generation"
            " ON tm_lexical_docs (user_id, generation)"
        )
    )


def create_engine(url: str, timeout: float) -> Engine:
    """An engine whose every wait is bounded by ``timeout`` seconds (lock, connect, statement)."""
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(
                url, connect_args={"timeout": timeout, "check_same_thread": False}
            )
            _configure_sqlite(engine, timeout)
            return engine
        connect_args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            millis = max(1, int(timeout * 1000))
            # Keep the URL's own libpq options (a search_path, say): connect_args would replace them.
            given = sa.engine.make_url(url).query.get("options", "")
            given = " ".join(given) if isinstance(given, tuple) else given
            connect_args = {
                "connect_timeout": max(1, int(timeout)),
                "options": f"{given} -c statement_timeout={millis} -c lock_timeout={millis}".strip(),
                "tcp_user_timeout": millis,
                "keepalives": 1,
                "keepalives_idle": max(1, int(timeout)),
                "keepalives_interval": max(1, int(timeout / 3) or 1),
                "keepalives_count": 3,
            }
        return sa.create_engine(
            url, pool_pre_ping=True, pool_timeout=timeout, connect_args=connect_args
        )
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open the session store {mask_credentials(url)}: {exc}") from exc


WAL_AUTOCHECKPOINT_PAGES = 10_000  # 40 MB of WAL at SQLite's default 4 KB pages


def _use_wal(cursor: Any, timeout: float) -> None:
    """Put the database in WAL mode (kept in the file: done once per database). Switching can
    fail at once with "database is locked" while another worker's connection holds a lock on a
    new file (SQLite does not always wait its busy timeout there), so it is retried until
    ``timeout``; a database already in WAL mode is left as it is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc).lower() or "busy" in str(exc).lower()
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _configure_sqlite(engine: Engine, timeout: float) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={max(1, int(timeout * 1000))}")
        _use_wal(cursor, timeout)
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The background worker checkpoints the WAL between turns (SqlSessionStore.checkpoint);
        # the automatic one, run by whichever commit crosses it, is only the backstop.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front (no deadlock-prone lock upgrade); readers use a snapshot.
        read_only = conn.get_execution_options().get("tm_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


__all__ = [
    "SCHEMA_VERSION",
    "create_engine",
    "create_tables",
    "documents_table",
    "fact_marks_table",
    "fact_versions_table",
    "facts_table",
    "insert_ignore",
    "leases_table",
    "lexical_docs_table",
    "lexical_users_table",
    "messages_table",
    "metadata",
    "postings_table",
    "sessions_table",
    "vault_table",
]
