"""Several app workers on one database: creating the tables, creating sessions and writing at once.

On the default run these use SQLite files; on the .ci/run server pass (``TM_TEST_*`` set) they
use PostgreSQL (a fresh schema per test) and the Chroma server, which is what several app workers
share in production.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import servers
from tm_reliability import MemoryFactory, chroma_client

from tiered_memory import SqlSessionStore

WORKERS = 8


def _at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    if errors:
        raise errors[0]
    return results


def _fresh_store_url(tmp_path: Path) -> str:
    if os.environ.get(servers.SESSION_STORE_URL_VAR):
        return servers.fresh_schema_url()  # an empty PostgreSQL schema
    return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"


def test_workers_creating_the_tables_at_once_all_succeed(tmp_path: Path) -> None:
    url = _fresh_store_url(tmp_path)
    stores = _at_once(WORKERS, lambda _: SqlSessionStore(url))
    try:
        for store in stores:  # every worker can use the schema right away
            assert store.load("kha", "s1").next_seq == 0
    finally:
        for store in stores:
            store.close()


def test_workers_opening_the_same_new_session_at_once_store_every_message(
    make_memory: MemoryFactory,
) -> None:
    sessions = [f"new-{n}" for n in range(5)]
    mems = [[make_memory(s, "kha") for s in sessions] for _ in range(WORKERS)]

    def first_writes(worker: int) -> None:
        for mem in mems[worker]:
            mem.add("user", f"worker {worker} was here", id=f"w{worker}")

    _at_once(WORKERS, first_writes)
    for mem in mems[0]:
        assert sorted(m.id for m in mem.history()) == [f"w{n}" for n in range(WORKERS)]


def test_workers_re_sending_the_same_message_store_it_once(make_memory: MemoryFactory) -> None:
    mems = [make_memory("retry", "kha") for _ in range(WORKERS)]
    ids = [uuid.uuid4().hex for _ in range(20)]

    def resend(worker: int) -> None:
        for message_id in ids:  # every worker retries every message: idempotent by id
            mems[worker].add("user", f"message {message_id}", id=message_id)

    _at_once(WORKERS, resend)
    history = [m.id for m in mems[0].history()]
    assert sorted(history) == sorted(ids) and len(history) == len(ids)


@pytest.mark.server
@pytest.mark.skipif(
    not servers.servers_configured(), reason="the server pass of .ci/run sets TM_TEST_*"
)
def test_the_server_pass_really_uses_the_servers(make_memory: MemoryFactory) -> None:
    mem = make_memory("s1", "kha")
    mem.add("user", "Where does this land?")
    mem.recall("land", exclude_window=False)
    if os.environ.get(servers.SESSION_STORE_URL_VAR):
        assert mem.store.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
    if os.environ.get(servers.CHROMA_HOST_VAR):
        client = chroma_client(mem)  # a plain HttpClient on the server
        name = mem.long_term.collection_name("kha")  # type: ignore[attr-defined]
        assert client.get_collection(name).count() == 1
