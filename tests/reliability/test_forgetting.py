"""forget(user_id=...) and forget(message_id=...): the data is gone from the SQL rows and the Chroma
collections (both read directly), and the summary is re-derived from what remains."""

from __future__ import annotations

from pathlib import Path

from tm_reliability import (
    LedgerSummarizer,
    MemoryFactory,
    assert_consistent,
    chroma_client,
    chroma_records,
    sql_rows,
    summary_ids,
)

from tiered_memory import TieredMemory
from tiered_memory.recall.timeline import FACTS_SESSION

FACTS = [
    "My name is Kha and I live in Hanoi.",
    "I prefer tea over coffee in the morning.",
    "We decided to ship the orders service on March 3rd.",
    "Remind me to call Lan on Friday about the budget.",
]
HIDING_PLACE = "My spare key hides under the blue flower pot."


def _chat(mem: TieredMemory, turns: int, tag: str = "") -> list[str]:
    return [
        mem.add("user" if n % 2 == 0 else "assistant", f"{FACTS[n % len(FACTS)]} {tag}{n}").id
        for n in range(turns)
    ]


def _rows(mem: TieredMemory, table: str, user_id: str) -> int:
    (row,) = sql_rows(mem, f"SELECT count(*) AS n FROM {table} WHERE user_id = :u", u=user_id)
    return int(row.n)


def _vectors_of(mem: TieredMemory, user_id: str) -> list[dict[str, object]]:
    """The user's message vectors (fact vectors are tested in tests/core/test_facts_recall.py)."""
    return [
        meta
        for _, _, meta in chroma_records(mem)
        if meta.get("user_id") == user_id and meta.get("session_id") != FACTS_SESSION
    ]


def _two_users(make_memory: MemoryFactory) -> tuple[TieredMemory, TieredMemory]:
    kha = make_memory("s1", "kha")
    _chat(kha, 12)
    _chat(make_memory("s2", "kha"), 6)
    lan = make_memory("s1", "lan")
    _chat(lan, 8)
    for mem in (kha, lan):
        mem.recall("tea")  # everything indexed
    return kha, lan


def test_forget_user_deletes_every_sql_row_of_the_user(make_memory: MemoryFactory) -> None:
    kha, lan = _two_users(make_memory)
    assert kha.forget(user_id="kha") == 18
    for table in ("tm_messages", "tm_sessions", "tm_leases"):
        assert _rows(kha, table, "kha") == 0
    assert _rows(lan, "tm_messages", "lan") == 8


def test_forget_user_deletes_the_users_chroma_collection(make_memory: MemoryFactory) -> None:
    kha, lan = _two_users(make_memory)
    kha.forget(user_id="kha")
    names = {c if isinstance(c, str) else c.name for c in chroma_client(kha).list_collections()}
    assert kha.long_term.collection_name("kha") not in names  # type: ignore[attr-defined]
    assert _vectors_of(kha, "kha") == []
    assert len(_vectors_of(lan, "lan")) == 8


def test_forget_user_removes_the_users_vector_files(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    """Chroma drops a deleted collection from its catalogue but leaves its HNSW files (the
    user's vectors and record ids) on disk; an embedded store removes them."""
    mem = make_memory("s1", "kha", path=tmp_path)
    other = make_memory("s1", "ana", path=tmp_path)
    _chat(mem, 6)
    _chat(other, 6)
    mem.flush()
    other.flush()
    before = _vector_dirs(tmp_path)
    mem.forget(user_id="kha")
    after = _vector_dirs(tmp_path)
    if before:  # an embedded Chroma (a server keeps its files elsewhere)
        assert len(after) == len(before) - 1
    assert other.recall("tea", exclude_window=False)
    again = make_memory("s2", "kha", path=tmp_path)
    again.add("user", "A new start: I live in Hue now.")
    again.flush()
    assert any("Hue" in h.text for h in again.recall("Where do I live?", exclude_window=False))


def _vector_dirs(path: Path) -> set[Path]:
    chroma = path / "chroma"
    return (
        {d for d in chroma.iterdir() if (d / "header.bin").exists()} if chroma.exists() else set()
    )


def test_forget_user_leaves_nothing_to_recall(make_memory: MemoryFactory) -> None:
    kha, _ = _two_users(make_memory)
    kha.forget(user_id="kha")
    fresh = make_memory("s3", "kha")
    assert fresh.recall("tea coffee Hanoi", exclude_window=False) == []
    assert fresh.history() == [] and kha.summary == ""


def test_forget_message_deletes_its_row_and_its_vector(make_memory: MemoryFactory) -> None:
    mem = make_memory("s1", "kha")
    secret = mem.add("user", HIDING_PLACE).id
    _chat(mem, 12)
    mem.recall("flower pot")
    assert mem.forget(message_id=secret) == 1
    assert sql_rows(mem, "SELECT seq FROM tm_messages WHERE message_id = :m", m=secret) == []
    metas = _vectors_of(mem, "kha")
    assert secret not in {m["message_id"] for m in metas}
    assert len(metas) == len(mem.history()) == 12
    assert all("flower pot" not in document for _, document, _ in chroma_records(mem))


def test_forget_message_re_derives_the_summary_from_what_remains(
    make_memory: MemoryFactory, ledger: Path
) -> None:
    mem = make_memory("s1", "kha", summarizer=LedgerSummarizer(ledger), summary_tokens=5_000)
    secret = mem.add("user", HIDING_PLACE).id
    _chat(mem, 16)
    assert secret in summary_ids(mem.summary)
    mem.forget(message_id=secret)
    ids = assert_consistent(mem)
    assert summary_ids(mem.summary) == ids[: len(ids) - len(mem.window())]
    assert secret not in summary_ids(mem.summary)


def test_forget_message_re_derives_a_natural_summary_without_the_fact(
    make_memory: MemoryFactory,
) -> None:
    mem = make_memory("s1", "kha")  # the offline extractive summarizer
    secret = mem.add("user", HIDING_PLACE).id
    _chat(mem, 16)
    assert "flower pot" in mem.summary
    mem.forget(message_id=secret)
    assert "flower pot" not in mem.summary
    assert "Kha" in mem.summary  # the rest is summarized again
    assert_consistent(mem)


def test_forget_message_reaches_the_other_sessions_of_the_user(
    make_memory: MemoryFactory,
) -> None:
    first = make_memory("s1", "kha")
    secret = first.add("user", HIDING_PLACE).id
    _chat(first, 16)
    assert "flower pot" in first.summary
    second = make_memory("s2", "kha")
    second.add("user", "Unrelated: what's the weather like?")
    assert second.forget(message_id=secret) == 1
    assert secret not in {m.id for m in first.history()}
    assert "flower pot" not in first.summary  # reset at once, re-derived on its next compaction
    first.compact()
    assert "flower pot" not in first.summary and "Kha" in first.summary
    assert_consistent(first)


def test_forget_message_in_the_window_removes_it_from_the_context(
    make_memory: MemoryFactory,
) -> None:
    mem = make_memory("s1", "kha", window_tokens=2_000)
    _chat(mem, 3)
    secret = mem.add("user", HIDING_PLACE).id
    assert mem.forget(message_id=secret) == 1
    assert all("flower pot" not in m["content"] for m in mem.context())
    assert_consistent(mem)


def test_forget_message_updates_the_token_accounting(make_memory: MemoryFactory) -> None:
    mem = make_memory("s1", "kha")
    secret = mem.add("user", HIDING_PLACE).id
    _chat(mem, 12)
    mem.forget(message_id=secret)
    remaining = sql_rows(
        mem, "SELECT sum(tokens) AS n FROM tm_messages WHERE user_id = :u", u="kha"
    )[0].n
    assert mem.stats.history_tokens == remaining
    assert mem.stats.messages == 12


def test_forget_message_of_another_user_removes_nothing(make_memory: MemoryFactory) -> None:
    kha, lan = _two_users(make_memory)
    target = lan.history()[0].id
    assert kha.forget(message_id=target) == 0
    assert target in {m.id for m in lan.history()}
    assert target in {m["message_id"] for m in _vectors_of(lan, "lan")}
