"""BM25 in the session store: same scores as the in-memory reference, consistent across processes
by construction (a forget in one process is invisible to every other's next recall; a process's
cached lexicon is checked against the store's version on every read), per user, built for stores
of an older version, and bounded in process memory."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from tm_reliability import MemoryFactory, sql_rows

from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory
from tiered_memory.recall.lexical import IndexedDoc, LexicalIndex, SessionSlots, terms
from tiered_memory.recall.records import record_key
from tiered_memory.resources import Resources
from tiered_memory.state import StoredDocument
from tiered_memory.store import LexiconCache, SqlSessionStore

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


def _wanted(reference: LexicalIndex, query: str) -> dict[str, float]:
    expected = reference.scores(query)
    return {
        doc.key: float(expected[slot])
        for slot, doc in enumerate(reference.docs)
        if doc is not None and expected[slot] > 0
    }


def _scores(store: SqlSessionStore, user: str, query: str) -> dict[str, float]:
    lexicon = store.lexicon(user, terms(query))
    found = lexicon.scores(terms(query))
    return {lexicon.keys[slot]: float(found[slot]) for slot in range(len(lexicon)) if found[slot]}


def test_store_bm25_scores_equal_the_in_memory_reference(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    reference = _reference(documents)
    assert len(store.lexicon("kha")) == len(CORPUS)
    for query in QUERIES:
        wanted = _wanted(reference, query)
        found = _scores(store, "kha", query)
        assert set(found) == set(wanted), query
        for key, score in wanted.items():
            assert found[key] == pytest.approx(score, rel=1e-12), query


def test_store_bm25_follows_removals_like_the_reference(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    before = store.lexicon("kha")
    store.forget_message("kha", documents[0].message_id)
    store.clear("kha", "s2")  # documents 2, 5, 8, 11
    left = [d for n, d in enumerate(documents) if n != 0 and d.session_id != "s2"]
    reference = _reference(left)
    after = store.lexicon("kha")
    assert after is not before and len(after) == len(left)
    assert after.state.removed_at > before.state.removed_at
    for query in QUERIES:
        assert _scores(store, "kha", query) == pytest.approx(_wanted(reference, query), rel=1e-12)


def test_the_lexicon_masks_by_session_and_time(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    lexicon = store.lexicon("kha")
    by_key = {record_key(d.session_id, d.message_id): d for d in documents}
    in_s1 = lexicon.mask(session_id="s1")
    assert {by_key[lexicon.keys[s]].session_id for s in range(len(lexicon)) if in_s1[s]} == {"s1"}
    assert not lexicon.mask(session_id="nowhere").any()
    since = _ts(documents[5].created_at)
    window = lexicon.mask(since=since, until=since + 86_400 * 3)
    picked = sorted(by_key[lexicon.keys[s]].seq for s in range(len(lexicon)) if window[s])
    assert picked == [5, 6, 7, 8]


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_the_lexicon_knows_each_documents_session_neighbours(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    documents = _index_corpus(store)
    lexicon = store.lexicon("kha")
    slot = {d.seq: lexicon.slot_of[record_key(d.session_id, d.message_id)] for d in documents}
    # s1 holds seqs 1, 4, 7, 10
    assert lexicon.neighbours(slot[10]) == (slot[7], None)
    assert lexicon.neighbours(slot[4]) == (slot[1], slot[7])
    assert lexicon.neighbours(slot[1]) == (None, slot[4])
    store.forget_message("kha", documents[7].message_id)
    lexicon = store.lexicon("kha")
    slot = {
        d.seq: lexicon.slot_of[record_key(d.session_id, d.message_id)]
        for d in documents
        if d.seq != 7
    }
    assert lexicon.neighbours(slot[10]) == (slot[4], None)


def test_store_bm25_is_per_user(make_memory: MemoryFactory) -> None:
    store = _store(make_memory)
    _index_corpus(store, "kha")
    lan_docs = _index_corpus(store, "lan")
    lan_keys = {record_key(d.session_id, d.message_id) for d in lan_docs}
    lexicon = store.lexicon("lan")
    assert set(lexicon.keys) == lan_keys
    assert set(lexicon.message_ids) == {d.message_id for d in lan_docs}
    assert _scores(store, "lan", "dog Rex tea budget Hanoi")
    assert len(store.lexicon("nobody")) == 0


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
        lexicon = reader.store.lexicon("kha")  # type: ignore[attr-defined]
        assert secret not in lexicon.message_ids
        assert not _scores(reader.store, "kha", "flower pot")  # type: ignore[arg-type]
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
        found = _scores(reader.store, "kha", "flower pot")  # type: ignore[arg-type]
        assert len(found) == 1
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
    assert _scores(store, "kha", "flower pot")


def test_recall_holds_lexicons_within_the_cache_budget(make_memory: MemoryFactory) -> None:
    users = [f"user{n}" for n in range(6)]
    first = make_memory("s1", users[0])
    store = first.store
    assert isinstance(store, SqlSessionStore)
    store.lexicons.budget = 3 * 15 * 400  # room for about three users of 15 short messages
    for user in users:
        mem = make_memory("s1", user)
        for n in range(15):
            mem.add("user", f"{user} talks about tea, coffee and the park, turn {n}")
        hits = make_memory("s2", user).recall("tea and the park")
        assert hits and all(h.user_id == user for h in hits)
    assert 0 < len(store.lexicons) < len(users)
    assert store.lexicons.nbytes <= store.lexicons.budget
    assert store.lexicons.get(users[-1]) is not None  # the most recent stay
    assert store.lexicons.get(users[0]) is None  # the least recent went first
    gc.collect()
    held = [o for o in gc.get_objects() if isinstance(o, (IndexedDoc, SessionSlots))]
    assert held == []  # and no per-document objects at all


def test_the_lexicon_cache_evicts_least_recently_used_first() -> None:
    from tiered_memory.recall.lexical import Lexicon, LexiconVersion

    def lexicon(n: int) -> Lexicon:
        docs = [(f"s{n}", k, f"key{n}-{k}", f"m{n}-{k}", 3, 0.0, "user", 1, "") for k in range(10)]
        return Lexicon.build(LexiconVersion("e", 1, 0, 10, 30), docs)

    size = lexicon(0).nbytes
    cache = LexiconCache(budget=2 * size)
    cache.put("a", lexicon(0))
    cache.put("b", lexicon(1))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", lexicon(2))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.nbytes == 2 * size
    huge = LexiconCache(budget=size - 1)
    huge.put("a", lexicon(0))  # bigger than the budget: used, never kept
    assert len(huge) == 0 and huge.nbytes == 0


def test_another_processs_writes_extend_the_cached_lexicon(
    make_memory: MemoryFactory, tmp_path: Path, tm_backend: dict
) -> None:
    writer = make_memory("s1", "kha")
    for n in range(5):
        writer.add("user", f"first batch message {n} about tea")
    writer.flush()
    resources, reader = _other_process(tmp_path, tm_backend)
    try:
        store = reader.store
        assert isinstance(store, SqlSessionStore)
        before = store.lexicon("kha")
        assert store.lexicon("kha") is before  # nothing changed: the same object
        for n in range(3):
            writer.add("user", f"second batch message {n} about the flower pot")
        writer.flush()
        after = store.lexicon("kha")
        assert after.keys[: len(before)] == before.keys  # extended, not read anew
        assert len(after) == len(before) + 3 and after.state.version > before.state.version
        assert any("flower pot" in h.text for h in reader.recall("flower pot", k=3))
    finally:
        resources.close()


def test_a_forgotten_user_who_comes_back_is_never_served_the_old_lexicon(
    make_memory: MemoryFactory, tmp_path: Path, tm_backend: dict
) -> None:
    """Forgetting a user drops its statistics row; the one made when it writes again has a new
    epoch, so a cached lexicon of the same version number is never taken for current."""
    writer = make_memory("s1", "kha")
    writer.add("user", SECRET)
    writer.flush()
    resources, reader = _other_process(tmp_path, tm_backend)
    try:
        store = reader.store
        assert isinstance(store, SqlSessionStore)
        old = store.lexicon("kha")
        writer.forget(user_id="kha")
        again = make_memory("s2", "kha")
        while True:  # the same number of versions as before, and more
            again.add("user", "a brand new life about tea")
            again.flush()
            state = writer.store.lexicon("kha").state  # type: ignore[attr-defined]
            if state.version >= old.state.version:
                break
        fresh = store.lexicon("kha")
        assert fresh.state.epoch != old.state.epoch
        assert not set(fresh.message_ids) & set(old.message_ids)
        assert not _scores(store, "kha", "flower pot")
    finally:
        resources.close()


@pytest.mark.parametrize("seed", range(4))
def test_a_cached_lexicon_always_equals_one_read_anew(
    make_memory: MemoryFactory, tm_backend: dict, seed: int
) -> None:
    """Random writes, forgets and clears from one store; another store on the same database
    (another process's) reads its cached lexicon after each: always what a fresh read gives."""
    rng = random.Random(seed)
    writer = make_memory("s0", "kha")
    store = writer.store
    assert isinstance(store, SqlSessionStore)
    reader = SqlSessionStore(store.url)
    uncached = SqlSessionStore(store.url, lexicon_cache_bytes=0)  # reads anew every time
    words = ["tea", "coffee", "park", "dog", "budget", "Hanoi", "shelter", "Friday", "novel"]
    written: list[StoredDocument] = []
    seq = 0
    try:
        for _step in range(30):
            action = rng.random()
            if action < 0.6 or not written:
                batch = []
                for _ in range(rng.randint(1, 4)):
                    seq += 1
                    text = " ".join(rng.choices(words, k=rng.randint(2, 8)))
                    batch.append(
                        StoredDocument(
                            session_id=f"s{rng.randint(0, 2)}", message_id=f"m{seq}", seq=seq,
                            role=rng.choice(["user", "assistant"]),
                            created_at=f"2024-02-{seq % 28 + 1:02d}T10:00:00+00:00", text=text,
                        )
                    )  # fmt: skip
                store.mark_indexed("kha", [(d.session_id, d.message_id) for d in batch], batch)
                written += batch
            elif action < 0.85:
                gone = rng.choice(written)
                store.forget_message("kha", gone.message_id)
                written.remove(gone)
            else:
                session = rng.choice(["s0", "s1", "s2"])
                store.clear("kha", session)
                written = [d for d in written if d.session_id != session]
            cached = reader.lexicon("kha")
            fresh = uncached.lexicon("kha")
            assert sorted(cached.message_ids) == sorted(d.message_id for d in written)
            assert cached.state == fresh.state
            query = " ".join(rng.sample(words, 3))
            assert _scores(reader, "kha", query) == pytest.approx(
                _scores(uncached, "kha", query), rel=1e-12
            )
            order = {k: n for n, k in enumerate(fresh.keys)}
            for slot, key in enumerate(cached.keys):  # the same neighbours, slot numbers aside
                mine = [cached.keys[n] if n is not None else None for n in cached.neighbours(slot)]
                theirs = [
                    fresh.keys[n] if n is not None else None for n in fresh.neighbours(order[key])
                ]
                assert mine == theirs
    finally:
        reader.close()
        uncached.close()


def test_recall_ranks_exactly_as_the_in_memory_index_over_every_document(
    make_memory: MemoryFactory,
) -> None:
    """The fused ranking over the store's lexicon equals the one over an in-memory index of all
    the user's documents (the former design)."""
    from tiered_memory.recall.index import indexed_doc
    from tiered_memory.recall.ranking import hybrid_rank
    from tiered_memory.recall.records import RecallQuery

    for n, session in enumerate(("a", "b", "c")):
        mem = make_memory(session, "kha", facts=False)  # messages only: facts rank apart
        for turn, text in enumerate(CORPUS):
            mem.add("user" if turn % 2 else "assistant", f"{text} ({session} {turn})")
        for turn in range(20):
            mem.add("assistant", f"filler {session} {n} number {turn} about weekends and tea")
    reader = make_memory("z", "kha", facts=False)
    reader.flush()
    store, vectors, tier3 = reader.store, reader.long_term, reader.tier3
    reference = LexicalIndex()
    documents = sorted(store.documents("kha"), key=lambda d: (d.session_id, d.message_id))
    reference.add(indexed_doc("kha", d) for d in documents)
    embedder = HashEmbedder()
    for query in [*QUERIES, "filler tea", "Rex shelter park"]:
        request = RecallQuery(text=query, k=10)
        nearest = vectors.nearest("kha", embedder.embed_query(query), 100, [])
        found = store.lexicon("kha", terms(query))
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
