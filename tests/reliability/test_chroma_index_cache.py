"""The embedded Chroma store keeps few indexes open and every index it may close on disk.

Chroma (1.x) keeps each opened collection's HNSW index in memory, by default up to the open-file
limit / 5 of them, and writes an index only every ``sync_threshold`` records (1,000): an index it
closed before writing loses the unwritten records in that process, or cannot be opened again
("Nothing found on disk"). The store caps the open indexes (``open_collections``) and has every
collection write its index on every write; these tests close indexes on purpose and check that
nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from tiered_memory import ConfigError
from tiered_memory.recall.chroma import ChromaLongTermStore
from tiered_memory.recall.records import LongTermRecord

RNG = np.random.default_rng(7)


def records(user: str, start: int, count: int) -> list[LongTermRecord]:
    return [
        LongTermRecord(
            user_id=user,
            session_id="s",
            message_id=f"m{i}",
            role="user",
            text=f"text {i}",
            created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
            embedding=RNG.standard_normal(16).tolist(),
            seq=i,
        )
        for i in range(start, start + count)
    ]


def threshold(store: ChromaLongTermStore, user: str) -> int:
    collection = store.client.get_collection(store.collection_name(user))
    return int(collection.configuration_json["hnsw"]["sync_threshold"])


def test_indexes_closed_by_the_cap_reopen_with_every_record(tmp_path: Path) -> None:
    store = ChromaLongTermStore(path=tmp_path, open_collections=3)
    sizes = {f"user-{n}": 1 + 9 * n for n in range(10)}
    for user, size in sizes.items():
        store.upsert(user, records(user, 0, size))
    # Chroma's default threshold would leave these records only in memory.
    for user, size in sizes.items():
        store.upsert(user, records(user, size, 3))
    query = RNG.standard_normal(16).tolist()
    for _ in range(2):  # ten users through three open indexes, twice
        for user, size in sizes.items():
            found = store.nearest(user, query, 200)
            assert len(found) == size + 3, user
    assert threshold(store, "user-9") == 1
    store.close()


def test_a_collection_of_an_older_version_is_written_before_it_can_be_closed(
    tmp_path: Path,
) -> None:
    legacy = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    name = ChromaLongTermStore(client=legacy).collection_name("old")
    made = legacy.create_collection(
        name, embedding_function=None, metadata={"hnsw:space": "cosine", "user_id": "old"}
    )
    for start in range(0, 100, 10):  # chat-sized writes, none written to disk (threshold 1000)
        batch = records("old", start, 10)
        made.upsert(
            ids=[r.key for r in batch], embeddings=[list(r.embedding) for r in batch],
            metadatas=[{"user_id": "old"} for _ in batch],
        )  # fmt: skip
    assert made.configuration_json["hnsw"]["sync_threshold"] == 1000
    legacy.close()

    store = ChromaLongTermStore(path=tmp_path, open_collections=2)
    query = RNG.standard_normal(16).tolist()
    assert len(store.nearest("old", query, 500)) == 100
    assert threshold(store, "old") == 1
    for n in range(4):  # close the old index
        store.upsert(f"other-{n}", records(f"other-{n}", 0, 5))
        store.nearest(f"other-{n}", query, 5)
    assert len(store.nearest("old", query, 500)) == 100
    store.close()


def test_a_fresh_process_finds_what_the_last_one_wrote(tmp_path: Path) -> None:
    first = ChromaLongTermStore(path=tmp_path, open_collections=2)
    for n in range(5):
        first.upsert(f"u{n}", records(f"u{n}", 0, 30 + n))
    first.close()
    second = ChromaLongTermStore(path=tmp_path, open_collections=2)
    query = RNG.standard_normal(16).tolist()
    assert [len(second.nearest(f"u{n}", query, 100)) for n in range(5)] == [30, 31, 32, 33, 34]
    second.close()


def test_open_collections_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="open_collections"):
        ChromaLongTermStore(path=tmp_path, open_collections=0)


def test_the_memory_config_sets_the_cap(tmp_path: Path) -> None:
    from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory

    with pytest.raises(ConfigError, match="chroma_open_collections"):
        MemoryConfig(chroma_open_collections=0)
    memory = TieredMemory(
        "s", "u", tmp_path, MemoryConfig(chroma_open_collections=2), embedder=HashEmbedder()
    )
    memory.add("user", "My favourite fruit is mango.")
    assert memory.recall("favourite fruit", exclude_window=False)
    assert memory.tier3.vectors.long_term.client._server.hnsw_cache_size == 2
    memory.close()
