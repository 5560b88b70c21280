"""Process-wide resources are one object that really closes, and memories are context managers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiered_memory import HashEmbedder, MemoryConfig, Resources, StoreError, TieredMemory
from tiered_memory.resources import default_resources, reset_default_resources


def test_closing_resources_stops_the_worker_and_refuses_new_memories(tmp_path: Path) -> None:
    with Resources() as resources:
        mem = TieredMemory("s1", "kha", tmp_path, embedder=HashEmbedder(), resources=resources)
        mem.add("user", "hello")
        assert resources.worker.submit(("k",), lambda: None)
    assert resources.closed
    assert not resources.worker.submit(("k",), lambda: None)
    with pytest.raises(StoreError, match="closed"):
        TieredMemory("s2", "kha", tmp_path, embedder=HashEmbedder(), resources=resources)


def test_a_memory_is_a_context_manager_that_flushes_tier3(tmp_path: Path) -> None:
    config = MemoryConfig(index_batch=1000)  # nothing would be indexed before the batch fills
    with Resources() as resources:
        with TieredMemory(
            "s1", "kha", tmp_path, config, embedder=HashEmbedder(), resources=resources
        ) as m:
            m.add("user", "My bike is red.")
            m.add("user", "hello")
        assert m.store.unindexed("kha") == []  # type: ignore[attr-defined]


async def test_async_context_manager(tmp_path: Path) -> None:
    with Resources() as resources:
        async with TieredMemory(
            "s1", "kha", tmp_path, embedder=HashEmbedder(), resources=resources
        ) as mem:
            await mem.aadd("user", "hi")
        assert [m.content for m in await mem.ahistory()] == ["hi"]


def test_default_resources_are_replaced_after_a_reset() -> None:
    first = default_resources()
    reset_default_resources()
    assert first.closed and default_resources() is not first
