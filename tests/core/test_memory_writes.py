"""Memory the agent writes (tiered_memory.recall.writes): save, update, delete, per user."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiered_memory import HashEmbedder, InvalidMessageError, MemoryConfig, TieredMemory
from tiered_memory.recall import format_recall_hits
from tiered_memory.recall.writes import (
    MAX_MEMORY_CHARS,
    MEMORIES_SESSION,
    adelete_memory,
    alist_memories,
    asave_memory,
    aupdate_memory,
    delete_memory,
    list_memories,
    save_memory,
    update_memory,
)

CONFIG = MemoryConfig(compaction="inline", window_tokens=200, summary_tokens=64, secrets="redact")


def _memory(path: Path, user: str = "kha", session: str = "chat") -> TieredMemory:
    return TieredMemory(session, user, path=path, config=CONFIG, embedder=HashEmbedder())


def test_a_saved_memory_is_recalled_from_another_session_at_once(tmp_path: Path) -> None:
    saved = save_memory(_memory(tmp_path), "The user is allergic to peanuts.")
    hits = _memory(tmp_path, session="later").recall("peanuts allergy", k=3)
    assert hits[0].message_id == saved.id and hits[0].session_id == MEMORIES_SESSION
    assert f"memory id: {saved.id}" in format_recall_hits(hits)


def test_saved_memories_are_user_messages_of_kind_memory(tmp_path: Path) -> None:
    save_memory(_memory(tmp_path), "  The user lives in Berlin.  ")
    stored = _memory(tmp_path, session=MEMORIES_SESSION).history()
    assert [(m.role, m.content, m.metadata) for m in stored] == [
        ("user", "The user lives in Berlin.", {"kind": "memory"})
    ]
    assert [m.text for m in list_memories(_memory(tmp_path))] == ["The user lives in Berlin."]


def test_update_replaces_the_memory_with_a_new_linked_id(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    old = save_memory(mem, "The user lives in Paris.")
    new = update_memory(mem, old.id, "The user lives in Berlin.")
    assert new.id != old.id and new.replaces == old.id
    assert [(m.id, m.text, m.replaces) for m in list_memories(mem)] == [
        (new.id, "The user lives in Berlin.", old.id)
    ]
    texts = [h.text for h in _memory(tmp_path, session="later").recall("where does the user live")]
    assert "The user lives in Berlin." in texts and "The user lives in Paris." not in texts


def test_delete_removes_the_memory_from_every_tier(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    saved = save_memory(mem, "The user's locker code word is pelican.")
    assert delete_memory(mem, saved.id) == saved.id
    assert list_memories(mem) == []
    assert _memory(tmp_path, session="later").recall("locker code word pelican") == []


def test_memories_are_scoped_to_their_user(tmp_path: Path) -> None:
    saved = save_memory(_memory(tmp_path), "The user is allergic to peanuts.")
    ann = _memory(tmp_path, user="ann")
    assert ann.recall("peanuts allergy") == []
    with pytest.raises(InvalidMessageError, match="no saved memory"):
        delete_memory(ann, saved.id)
    with pytest.raises(InvalidMessageError, match="no saved memory"):
        update_memory(ann, saved.id, "The user likes peanuts.")
    assert [m.id for m in list_memories(_memory(tmp_path))] == [saved.id]


def test_chat_messages_cannot_be_deleted_as_memories(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    chat = mem.add("user", "Hello there")
    with pytest.raises(InvalidMessageError, match="no saved memory"):
        delete_memory(mem, chat.id)
    assert [m.id for m in mem.history()] == [chat.id]


@pytest.mark.parametrize("text", ["", "   ", None, 42, "x" * (MAX_MEMORY_CHARS + 1)])
def test_bad_texts_are_refused_and_store_nothing(tmp_path: Path, text: object) -> None:
    mem = _memory(tmp_path)
    with pytest.raises(InvalidMessageError):
        save_memory(mem, text)  # type: ignore[arg-type]
    assert list_memories(mem) == []


@pytest.mark.parametrize("memory_id", ["", None, "x" * 300, "unknown"])
def test_bad_ids_are_refused(tmp_path: Path, memory_id: object) -> None:
    mem = _memory(tmp_path)
    saved = save_memory(mem, "The user is allergic to peanuts.")
    with pytest.raises(InvalidMessageError):
        delete_memory(mem, memory_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError):
        update_memory(mem, memory_id, "anything")  # type: ignore[arg-type]
    assert [m.id for m in list_memories(mem)] == [saved.id]


def test_a_vaulted_secret_in_a_memory_is_stored_sealed_and_given_back(tmp_path: Path) -> None:
    config = CONFIG.replace(secrets="vault")
    mem = TieredMemory("chat", "kha", path=tmp_path, config=config, embedder=HashEmbedder())
    saved = save_memory(mem, "The user's API key is 123")
    assert saved.text == "The user's API key is 123"
    raw = mem.store.history("kha", MEMORIES_SESSION)[0].content
    assert "123" not in raw and "[SECRET_API_KEY_" in raw
    assert list_memories(mem)[0].text == "The user's API key is 123"


async def test_async_twins_behave_like_the_sync_ones(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    old = await asave_memory(mem, "The user works at Acme.")
    new = await aupdate_memory(mem, old.id, "The user works at Globex.")
    assert [m.text for m in await alist_memories(mem)] == ["The user works at Globex."]
    assert await adelete_memory(mem, new.id) == new.id
    assert await alist_memories(mem) == []
    with pytest.raises(InvalidMessageError):
        await adelete_memory(mem, new.id)
