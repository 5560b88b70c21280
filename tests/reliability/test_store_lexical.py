"""BM25 in the session store: same scores as the in-memory reference, consistent across processes
by construction (a forget in one process is invisible to every other's next recall), per user,
built for stores of an older version, and no per-user index in process memory."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import sqlalchemy as sa
from tm_reliability import MemoryFactory, sql_rows

from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory
from tiered_memory.recall.lexical import IndexedDoc, LexicalIndex, SessionSlots, terms
from tiered_memory.recall.records import record_key
from tiered_memory.resources import Resources
from tiered_memory.state import StoredDocument
from tiered_memory.store import SqlSessionStore

CORPUS = [
    "My dog Rex loves the park near our house in Hanoi",
    "We adopted Rex from a shelter; the dog was two years old",
    "I prefer tea over coffee, green tea especially, tea tea tea",
    "The budget meeting moved to Friday, call Lan about the budget",
    "Running in the park every morning keeps me sane",
    "I'm reading a novel about dogs and their owners",
    "ok",
    "Lan said the budget for the orders service is final",
    "My sister visited Hanoi last spring and loved the food",
    "Coffee shops in Hanoi open early; egg coffee is famous",
    "The shelter asked for volunteers on weekends",
    "A very long note: " + " ".join(f"word{n}" for n in range(300)) + " park dog budget",
]
QUERIES = [
    "where does my dog Rex play",
    "tea or coffee",
    "budget Friday Lan",
    "Hanoi food",
    "shelter volunteers weekends",
    "nothing matches zzz",
    "park",
]
LEXICAL_TABLES = ("tm_postings", "tm_lexical_docs", "tm_lexical_users")


def _documents(user: str = "kha") -> list[StoredDocument]:
    return [
        StoredDocument(
            session_id=f"s{n % 3}",
            message_id=f"{user}-m{n}",
            seq=n,
            role="user",
            created_at=f"2024-01-{n + 1:02d}T10:00:00+00:00",
            text=text,
        )
        for n, text in enumerate(CORPUS)
    ]


def _reference(documents: list[StoredDocument]) -> LexicalIndex:
    index = LexicalIndex()
    index.add(
        IndexedDoc(
            record_key(d.session_id, d.message_id),
            d.text,
            {"session_id": d.session_id, "seq": d.seq, "created_ts": 0.0},
        )
        for d in documents
    )
    return index


def _store(make_memory: MemoryFactory, user: str = "kha") -> SqlSessionStore:
    mem = make_memory("s0", user)
    store = mem.store
    assert isinstance(store, SqlSessionStore)
    return store


def _index_corpus(store: SqlSessionStore, user: str = "kha") -> list[StoredDocument]:
    documents = _documents(user)
    store.mark_indexed(user, [(d.session_id, d.message_id) for d in documents], documents)
    return documents


def test_store_bm25_scores_equal_the_in_memory_reference(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    reference = _reference(documents)
    for query in QUERIES:
        expected = reference.scores(query)
        wanted = {
            doc.key: float(expected[slot])
            for slot, doc in enumerate(reference.docs)
            if doc is not None and expected[slot] > 0
        }
        found = store.lexical_search("kha", terms(query), [], limit=1000)
        assert found.total_documents == len(CORPUS)
        assert set(found.scores) == set(wanted), query
        for key, score in wanted.items():
            assert found.scores[key] == pytest.approx(score, rel=1e-12), query
        top = store.lexical_search("kha", terms(query), [], limit=3).scores
        best = sorted(wanted.items(), key=lambda item: -item[1])[:3]
        assert sorted(top.values(), reverse=True) == pytest.approx([s for _, s in best])


def test_store_bm25_follows_removals_like_the_reference(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    store.forget_message("kha", documents[0].message_id)
    store.clear("kha", "s2")  # documents 2, 5, 8, 11
    left = [d for n, d in enumerate(documents) if n != 0 and d.session_id != "s2"]
    reference = _reference(left)
    for query in QUERIES:
        expected = reference.scores(query)
        wanted = {
            d.key: float(expected[slot])
            for slot, d in enumerate(reference.docs)
            if d is not None and expected[slot] > 0
        }
        found = store.lexical_search("kha", terms(query), [], limit=1000)
        assert found.total_documents == len(left)
        assert found.scores == pytest.approx(wanted, rel=1e-12), query


def test_store_bm25_top_obeys_session_and_time_filters(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    by_key = {record_key(d.session_id, d.message_id): d for d in documents}
    found = store.lexical_search("kha", terms("dog park budget"), [], 100, session_id="s1")
    assert found.scores and {by_key[k].session_id for k in found.scores} == {"s1"}
    since = documents[5].created_at
    ts = {k: d.created_at for k, d in by_key.items()}
    found = store.lexical_search(
        "kha", terms("dog park budget"), [], 100, since=_ts(since), until=_ts(since) + 86_400 * 3
    )
    assert found.scores and all(since <= ts[k] for k in found.scores)


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_store_search_returns_each_candidates_session_neighbours(
    make_memory: MemoryFactory,
) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    found = store.lexical_search("kha", terms("shelter volunteers weekends"), [], 1)
    (best,) = found.scores
    assert best == record_key(documents[10].session_id, documents[10].message_id)
    # s1 holds seqs 1, 4, 7, 10: the hit, its neighbour (loaded), that one's (a position only)
    assert sorted(d.document.seq for d in found.documents) == [7, 10]
    assert found.positions == (("s1", 4),)


def test_store_bm25_is_per_user(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    _index_corpus(store, "kha")
    lan_docs = _index_corpus(store, "lan")
    lan_keys = {record_key(d.session_id, d.message_id) for d in lan_docs}
    found = store.lexical_search("lan", terms("dog Rex tea budget Hanoi"), [], 1000)
    assert found.scores and set(found.scores) <= lan_keys
    assert {d.document.message_id for d in found.documents} <= {d.message_id for d in lan_docs}
    assert store.lexical_search("nobody", terms("dog"), [], 10).scores == {}


def test_recall_never_mixes_users(make_memory: MemoryFactory) -> None:
    kha, lan = make_memory("s1", "kha"), make_memory("s1", "lan")
    kha.add("user", "My spare key hides under the blue flower pot.")
    lan.add("user", "I keep my bike in the garage.")
    for mem in (kha, lan):
        for n in range(6):
            mem.add("assistant", f"filler reply {n}")
    hits = make_memory("s2", "lan").recall("key flower pot", k=10)
    assert hits and all(h.user_id == "lan" and "flower" not in h.text for h in hits)


def _other_process(
    path: Path, tm_backend: dict, session: str = "s9"
) -> tuple[Resources, TieredMemory]:
    """A memory sharing nothing in process with the others (its own engines and clients)."""
    resources = Resources()
    config = MemoryConfig(compaction="inline", **tm_backend)
    memory = TieredMemory(
        session, "kha", path, config, embedder=HashEmbedder(), resources=resources
    )
    return resources, memory


SECRET = "My spare key hides under the blue flower pot."


def test_a_forget_in_one_process_is_invisible_to_anothers_next_recall(
    make_memory: MemoryFactory, tmp_path: Path, tm_backend: dict
) -> None:
    writer = make_memory("s1", "kha")
    secret = writer.add("user", SECRET).id
    for n in range(10):
        writer.add("assistant", f"filler reply number {n}")
    resources, reader = _other_process(tmp_path, tm_backend)
    try:
        assert any("flower pot" in h.text for h in reader.recall("spare key flower pot", k=5))
        assert writer.forget(message_id=secret) == 1
        hits = reader.recall("spare key flower pot", k=20)
        assert hits and all(h.message_id != secret and "flower" not in h.text for h in hits)
        found = reader.store.lexical_search("kha", terms(SECRET), [], 100)
        assert all("flower" not in d.document.text for d in found.documents)
        writer.forget(user_id="kha")
        assert reader.recall("filler reply number", k=5) == []
    finally:
        resources.close()


def test_forget_user_leaves_no_lexical_rows(make_memory: MemoryFactory) -> None:
    kha, lan = make_memory("s1", "kha"), make_memory("s1", "lan")
    for mem in (kha, lan):
        for n in range(5):
            mem.add("user", f"tea and coffee talk {n}")
        mem.recall("tea")
    kha.forget(user_id="kha")
    for table in LEXICAL_TABLES:
        (row,) = sql_rows(kha, f"SELECT count(*) AS n FROM {table} WHERE user_id = :u", u="kha")
        assert row.n == 0, table
    (row,) = sql_rows(lan, "SELECT count(*) AS n FROM tm_lexical_docs WHERE user_id = :u", u="lan")
    assert row.n == 5


def _drop_postings(store: SqlSessionStore) -> None:
    """Make the store look like one of schema version 2 (documents, no postings, the old log)."""
    with store.engine.begin() as conn:
        for table in LEXICAL_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))
        conn.execute(
            sa.text(
                "CREATE TABLE tm_tier3_changes (change_id INTEGER PRIMARY KEY, user_id TEXT,"
                " session_id TEXT, message_id TEXT, removed BOOLEAN)"
            )
        )


def test_a_store_without_postings_gets_them_on_the_first_recall(
    make_memory: MemoryFactory, tmp_path: Path, tm_backend: dict
) -> None:
    writer = make_memory("s1", "kha")
    writer.add("user", SECRET)
    for n in range(10):
        writer.add("assistant", f"filler reply number {n}")
    store = writer.store
    assert isinstance(store, SqlSessionStore)
    documents = store.document_count("kha")
    _drop_postings(store)
    assert store.lexical_stats("kha") is None
    resources, reader = _other_process(tmp_path, tm_backend)  # opens (migrates) the store anew
    try:
        assert not sa.inspect(reader.store.engine).has_table("tm_tier3_changes")  # type: ignore[attr-defined]
        found = reader.store.lexical_search("kha", terms("flower pot"), [], 10)
        assert [d.document.text for d in found.documents if d.key in found.scores] == [SECRET]
        stats = reader.store.lexical_stats("kha")  # type: ignore[attr-defined]
        assert stats is not None and stats[0] == documents
        assert reader.recall("blue flower pot", k=1)[0].text == SECRET
    finally:
        resources.close()


def test_a_write_to_a_store_without_postings_builds_the_older_ones_first(
    make_memory: MemoryFactory,
) -> None:
    mem = make_memory("s1", "kha")
    mem.add("user", SECRET)
    for n in range(4):
        mem.add("assistant", f"filler reply number {n}")
    store = mem.store
    assert isinstance(store, SqlSessionStore)
    mem.recall("filler")
    with store.engine.begin() as conn:
        for table in LEXICAL_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    other = make_memory("s2", "kha")
    other.add("user", "a new message about tea")
    other.recall("tea")  # indexes the new one: the older documents get postings too
    stats = store.lexical_stats("kha")
    assert stats is not None and stats[0] == store.document_count("kha") == 6
    assert store.lexical_search("kha", terms("flower pot"), [], 10).scores


def test_recall_keeps_no_per_user_index_in_memory(make_memory: MemoryFactory) -> None:
    users = [f"user{n}" for n in range(6)]
    for user in users:
        mem = make_memory("s1", user)
        for n in range(15):
            mem.add("user", f"{user} talks about tea, coffee and the park, turn {n}")
        make_memory("s2", user).recall("tea and the park")
    gc.collect()
    held = [o for o in gc.get_objects() if isinstance(o, (IndexedDoc, SessionSlots))]
    assert held == []


def test_recall_ranks_exactly_as_the_in_memory_index_over_every_document(
    make_memory: MemoryFactory,
) -> None:
    """The store returns only candidates and their neighbourhoods; the fused ranking over them
    equals the one over an in-memory index of all the user's documents (the former design)."""
    from tiered_memory.recall.index import indexed_doc
    from tiered_memory.recall.ranking import hybrid_rank
    from tiered_memory.recall.records import RecallQuery

    for n, session in enumerate(("a", "b", "c")):
        mem = make_memory(session, "kha")
        for turn, text in enumerate(CORPUS):
            mem.add("user" if turn % 2 else "assistant", f"{text} ({session} {turn})")
        for turn in range(20):
            mem.add("assistant", f"filler {session} {n} number {turn} about weekends and tea")
    reader = make_memory("z", "kha")
    reader.flush()
    store, vectors, tier3 = reader.store, reader.long_term, reader.tier3
    reference = LexicalIndex()
    documents = sorted(store.documents("kha"), key=lambda d: (d.session_id, d.message_id))
    reference.add(indexed_doc("kha", d) for d in documents)
    embedder = HashEmbedder()
    for query in [*QUERIES, "filler tea", "Rex shelter park"]:
        request = RecallQuery(text=query, k=10)
        nearest = vectors.nearest("kha", embedder.embed_query(query), 100, [])
        found = store.lexical_search("kha", terms(query), [k for k, _ in nearest], 100)
        got = [
            (record_key(h.session_id, h.message_id), h.score)
            for h in tier3.rank(found, request, nearest, set())
        ]
        dense = {reference.slot_of(k): 1.0 - d for k, d in nearest}
        ranked = hybrid_rank(
            dense,
            reference.scores(query),
            reference,
            reference.mask(),
            tier3.weights,  # type: ignore[arg-type]
        )
        every = {reference.docs[s].key: score for s, score in ranked}  # type: ignore[union-attr]
        want = [score for _, score in ranked[:10]]
        assert [s for _, s in got] == pytest.approx(want, rel=1e-9), query  # ties aside, same
        assert all(every[key] == pytest.approx(score, rel=1e-9) for key, score in got), query
