"""Facts are recorded exactly once per message, whatever retries, races and crashes do."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tm_reliability import MemoryFactory, sql_rows

from tiered_memory import HashEmbedder, MemoryConfig, SqlSessionStore, TieredMemory
from tiered_memory.facts import FactBook, OfflineFactExtractor, Statement
from tiered_memory.messages import Message
from tiered_memory.recall.timeline import FACTS_SESSION

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _log(tmp_path: Path, texts: Sequence[str]) -> SqlSessionStore:
    """Messages in the log of kha's session s1 (seq 0..n-1), none compacted yet."""
    config = MemoryConfig(window_tokens=100_000, compaction="inline")
    mem = TieredMemory("s1", "kha", tmp_path, config, embedder=HashEmbedder())
    for i, text in enumerate(texts):
        mem.add("user", text, created_at=T0 + timedelta(days=i))
    assert isinstance(mem.store, SqlSessionStore)
    return mem.store


def _same(message: Message, previous: Message | None = None) -> Message:
    return message


MOVES = ["I live in Paris.", "I moved to Berlin.", "I moved to Madrid.", "I moved to Rome."]


def _book(store: SqlSessionStore, extractor: object | None = None) -> FactBook:
    return FactBook(store.engine, "kha", extractor)  # type: ignore[arg-type]


def test_a_retried_pass_records_nothing_twice(tmp_path: Path) -> None:
    store = _log(tmp_path, MOVES)
    book = _book(store)
    first = book.observe_upto("s1", 4, _same)
    assert [f.value for f in first if f.current] == ["Rome"]
    assert book.observe_upto("s1", 4, _same) == []  # a retry after the commit
    assert book.observe_upto("s1", 2, _same) == []  # an older batch arriving late
    assert [f.value for f in book.facts()] == ["Paris", "Berlin", "Madrid", "Rome"]
    assert [f.value for f in book.facts() if f.current] == ["Rome"]


def test_batches_are_observed_in_order_each_once(tmp_path: Path) -> None:
    store = _log(tmp_path, MOVES)
    calls: list[list[str]] = []

    class Recording(OfflineFactExtractor):
        def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
            calls.append([m.content for m in messages])
            return super().extract(session_id, messages)

    book = _book(store, Recording())
    book.observe_upto("s1", 2, _same)
    book.observe_upto("s1", 4, _same)
    book.observe_upto("s1", 4, _same)
    assert calls == [MOVES[:2], MOVES[2:]]
    assert len(book.facts()) == 4


def test_racing_passes_write_each_fact_once(tmp_path: Path) -> None:
    store = _log(tmp_path, MOVES)
    barrier = threading.Barrier(4)

    class Slow(OfflineFactExtractor):
        def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
            barrier.wait(timeout=10)  # every pass has read the same watermark
            return super().extract(session_id, messages)

    books = [_book(SqlSessionStore(store.url), Slow()) for _ in range(4)]
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(len(b.observe_upto("s1", 4, _same))))
        for b in books
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [0, 0, 0, 4]  # one pass wrote, the others found it done
    assert [f.value for f in books[0].facts()] == ["Paris", "Berlin", "Madrid", "Rome"]


def test_a_failed_extraction_leaves_the_batch_for_the_next_pass(tmp_path: Path) -> None:
    store = _log(tmp_path, MOVES)
    failing = {"on": True}

    class Flaky(OfflineFactExtractor):
        def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
            if failing["on"]:
                raise TimeoutError("model down")
            return super().extract(session_id, messages)

    book = _book(store, Flaky())
    with contextlib.suppress(TimeoutError):
        book.observe_upto("s1", 2, _same)
    assert book.facts() == []
    failing["on"] = False
    book.observe_upto("s1", 4, _same)  # the next batch's pass takes the failed one too
    assert [f.value for f in book.facts()] == ["Paris", "Berlin", "Madrid", "Rome"]


def test_an_answer_that_is_no_statement_is_skipped_not_retried_forever(tmp_path: Path) -> None:
    store = _log(tmp_path, MOVES)

    class Broken:
        def extract(self, session_id: str, messages: Sequence[Message]) -> object:
            return [Statement("home", "Mars", "set", T0, session_id, "not-in-the-batch")]

    book = _book(store, Broken())
    assert book.observe_upto("s1", 4, _same) == []
    assert book.facts() == []
    assert book._mark("s1") == 4  # the watermark moved past the bad batch


def _chat(mem: TieredMemory) -> None:
    for n, text in enumerate(MOVES):
        mem.add("user", text, created_at=T0 + timedelta(days=30 * n))
        mem.add("assistant", "Noted, thank you.", created_at=T0 + timedelta(days=30 * n))
    for n in range(6):
        mem.add("user", f"Filler {n} about the weather.", created_at=T0 + timedelta(days=200))


def test_compaction_retried_after_a_crash_in_the_fact_pass_repairs_the_documents(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = make_memory("s1", "kha", path=tmp_path, window_tokens=60, summary_tokens=200)
    assert mem.facts is not None
    real = mem.facts.sync_steps
    mem.facts.sync_steps = lambda: iter(())  # type: ignore[method-assign,assignment]
    _chat(mem)  # facts written, their documents not (a crash between the two)
    mem.compact()
    facts = mem.facts.book.facts()
    assert facts
    docs = [d for d in mem.store.documents("kha") if d.session_id == FACTS_SESSION]
    assert docs == []
    mem.facts.sync_steps = real  # type: ignore[method-assign]
    for n in range(10):
        mem.add("user", f"Another filler {n} about nothing much, and the weather again.")
    mem.compact()  # the next batch's pass writes what the crash left out
    docs = [d for d in mem.store.documents("kha") if d.session_id == FACTS_SESSION]
    assert sorted(d.text for d in docs) == sorted(f.text() for f in mem.facts.book.facts())
    rows = sql_rows(mem, "SELECT COUNT(*) FROM tm_facts WHERE user_id = 'kha'")
    assert rows[0][0] == len(facts)


def test_two_memories_of_one_session_compacting_at_once_record_each_fact_once(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    first = make_memory("s1", "kha", path=tmp_path, window_tokens=60, summary_tokens=200)
    _chat(first)
    second = make_memory("s1", "kha", path=tmp_path, window_tokens=60, summary_tokens=200)
    threads = [threading.Thread(target=m.compact) for m in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    rows = sql_rows(first, "SELECT value FROM tm_facts WHERE user_id = 'kha' ORDER BY fact_id")
    assert [r[0] for r in rows] == ["Paris", "Berlin", "Madrid", "Rome"]
