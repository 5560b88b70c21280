"""Helpers of the reliability suite (tests and their child processes import this module).

Direct views of the stores: rows of the session store through raw SQL on a connection of its own,
documents of the Chroma collections through a plain ``chromadb`` client, never the library's reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tiered_memory import MemoryConfig, SummaryRequest, TieredMemory

MemoryFactory = Callable[..., TieredMemory]


# --- direct views of the stores --------------------------------------------------------------


def session_store_url(mem: TieredMemory) -> str:
    return str(mem.store.url)  # type: ignore[attr-defined]


def sql_rows(mem: TieredMemory, query: str, **params: Any) -> list[Any]:
    """Rows of a raw SQL query on the memory's session store, through a connection of its own."""
    engine = sa.create_engine(session_store_url(mem))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))
    finally:
        engine.dispose()


def sql_execute(mem: TieredMemory, statement: str, **params: Any) -> None:
    """Run a raw SQL write on the memory's session store and commit it."""
    engine = sa.create_engine(session_store_url(mem))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def chroma_client(mem: TieredMemory) -> Any:
    """A plain chromadb client on the memory's Tier-3 storage (server or embedded directory)."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if mem.config.chroma_host:
        return chromadb.HttpClient(
            host=mem.config.chroma_host, port=mem.config.chroma_port, settings=settings
        )
    return chromadb.PersistentClient(path=str(mem.path / "chroma"), settings=settings)


def chroma_records(mem: TieredMemory) -> list[tuple[str, str, dict[str, Any]]]:
    """``(collection, document, metadata)`` of every record of this test's collections,
    after the memory wrote its pending Tier-3 batch."""
    mem.flush()
    client = chroma_client(mem)
    records = []
    for collection in client.list_collections():
        name = collection if isinstance(collection, str) else collection.name
        if not name.startswith(mem.config.collection_prefix + "_"):
            continue
        got = client.get_collection(name).get(include=["documents", "metadatas"])
        records.extend(
            (name, document or "", dict(meta or {}))
            for document, meta in zip(got["documents"], got["metadatas"], strict=True)
        )
    return records


def config_json(mem: TieredMemory) -> str:
    """The memory's config for a child process (``MemoryConfig(**json.loads(...))``)."""
    return json.dumps(dataclasses.asdict(mem.config))


def load_config(text: str) -> MemoryConfig:
    return MemoryConfig(**json.loads(text))


# --- recording summarizers ---------------------------------------------------------------------


class LedgerSummarizer:
    """Writes the id of every message it is given into the summary, as ``<id>``.

    The committed summary is then the exact list of messages it covers: a forked summary (two
    extensions of the same base both committed) would show ids twice. Each call is also appended
    to ``ledger`` (one JSON line per call, O_APPEND, safe across processes). ``fail_every`` makes
    every n-th call raise first.
    """

    def __init__(self, ledger: Path | None = None, fail_every: int = 0, delay: float = 0.0) -> None:
        self.ledger = ledger
        self.fail_every = fail_every
        self.delay = delay  # seconds each call takes (a slow model)
        self.calls = 0
        self.failures = 0

    def summarize(self, request: SummaryRequest) -> str:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            self.failures += 1
            raise ConnectionError(f"model unavailable (call {self.calls})")
        ids = [m.id for m in request.messages]
        if self.delay:
            time.sleep(self.delay)
        if self.ledger is not None:
            line = json.dumps({"pid": os.getpid(), "ids": ids}) + "\n"
            fd = os.open(self.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        if not ids:  # condense: the budget is set high enough that this never has to cut
            return request.previous_summary
        return (request.previous_summary + " " + " ".join(f"<{i}>" for i in ids)).strip()

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)


def summary_ids(summary: str) -> list[str]:
    """The ids a LedgerSummarizer summary covers, in order."""
    return [token[1:-1] for token in summary.split() if token.startswith("<")]


def ledger_ids(ledger: Path) -> list[str]:
    if not ledger.exists():
        return []
    return [i for line in ledger.read_text().splitlines() for i in json.loads(line)["ids"]]


# --- bookkeeping -------------------------------------------------------------------------------


def assert_consistent(mem: TieredMemory) -> list[str]:
    """Check the session's pointers against its rows; returns the history ids in order.

    ``summarized_upto <= window_start <= next_seq``; every row below ``next_seq``, ids unique;
    window and pending are exactly the rows of their ranges (so both are part of history); the
    stored summary size is the size of the stored summary.
    """
    params = {"u": mem.user_id, "s": mem.session_id}
    (row,) = sql_rows(
        mem,
        "SELECT summarized_upto, window_start, next_seq, summary, summary_tokens "
        "FROM tm_sessions WHERE user_id = :u AND session_id = :s",
        **params,
    )
    rows = sql_rows(
        mem,
        "SELECT seq, message_id FROM tm_messages WHERE user_id = :u AND session_id = :s "
        "ORDER BY seq",
        **params,
    )
    seqs = [r.seq for r in rows]
    ids = [r.message_id for r in rows]
    assert 0 <= row.summarized_upto <= row.window_start <= row.next_seq
    assert all(seq < row.next_seq for seq in seqs)
    assert len(set(ids)) == len(ids), "a message is stored twice"
    assert [m.id for m in mem.history()] == ids
    window = [i for s, i in zip(seqs, ids, strict=True) if s >= row.window_start]
    pending = [
        i for s, i in zip(seqs, ids, strict=True) if row.summarized_upto <= s < row.window_start
    ]
    assert [m.id for m in mem.window()] == window
    assert [m.id for m in mem.pending()] == pending
    assert row.summary_tokens == mem.counter.count_text(row.summary)
    return ids


class Blocking:
    """A sync-only summarizer that blocks until released (a hung provider)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def summarize(self, request: SummaryRequest) -> str:
        self.calls += 1
        self.release.wait(30)
        return "late"
