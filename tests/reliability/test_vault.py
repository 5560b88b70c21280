"""The secrets vault (``secrets="vault"``, the default): the seed's "My API key is 123" flow.

Files are read as raw bytes (every file under the Chroma directory, the SQLite file and its WAL),
the summary and the log through SQL, recall through the LangChain recall tool.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tm_reliability import MemoryFactory, chroma_records, sql_rows

from langchain_tiered_memory import create_recall_tool
from tiered_memory import ConfigError, MemoryConfig, TieredMemory
from tiered_memory.vault import KEY_ENV, PLACEHOLDER, placeholder, seal_text

SEED = "My API key is 123"
OPENAI_KEY = "sk-test-9f8e7d6c5b4a3f2e1d0c"
FILLER = [
    "I prefer tea over coffee in the morning.",
    "We decided to ship the orders service on March 3rd.",
    "Remind me to call Lan on Friday about the budget.",
    "The weather in Hanoi was lovely this weekend.",
] * 2


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _session_one(make_memory: MemoryFactory, path: Path, **kwargs: object) -> TieredMemory:
    mem = make_memory("s1", "kha", path=path, window_tokens=60, summary_tokens=200, **kwargs)
    mem.add("user", SEED)
    mem.add("assistant", "Noted.")
    mem.add("user", f"My OpenAI key is {OPENAI_KEY}, keep it safe.")
    for n, text in enumerate(FILLER):
        mem.add("user" if n % 2 == 0 else "assistant", text)
    mem.flush()
    return mem


def _bytes_at_rest(path: Path) -> list[tuple[Path, bytes]]:
    files = [p for p in (path / "chroma").rglob("*") if p.is_file()]
    files += [p for p in path.glob("sessions.sqlite3*") if p.is_file()]
    return [(p, p.read_bytes()) for p in files]


def _local_only(make_memory: MemoryFactory) -> None:
    if make_memory().config.session_store_url or make_memory().config.chroma_host:
        pytest.skip("reads the embedded stores' files")


def test_default_policy_is_the_vault() -> None:
    assert MemoryConfig().secrets == "vault"
    assert "vault_key" not in repr(MemoryConfig(vault_key=Fernet.generate_key().decode()))


def test_seed_flow_gives_the_key_back_to_its_owner_in_a_later_session(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    _session_one(make_memory, tmp_path)
    later = make_memory("s2", "kha", path=tmp_path)
    answer = create_recall_tool(later).invoke({"query": "What was my key?", "k": 3})
    assert "My API key is 123" in answer
    assert "[SECRET_" not in answer
    other = create_recall_tool(later).invoke({"query": "What was my OpenAI key?", "k": 3})
    assert f"My OpenAI key is {OPENAI_KEY}, keep it safe." in other


def test_the_log_the_summary_and_chroma_hold_placeholders_only(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = _session_one(make_memory, tmp_path)
    assert not mem.pending() and mem.summary
    rows = sql_rows(mem, "SELECT content FROM tm_messages WHERE user_id = 'kha'")
    log = "\n".join(r.content for r in rows)
    chroma = "\n".join(document for _, document, _ in chroma_records(mem))
    for text in (log, chroma, mem.summary):
        assert SEED not in text and OPENAI_KEY not in text
    assert PLACEHOLDER.search(log) and PLACEHOLDER.search(chroma)
    assert "My API key is [SECRET_API_KEY_" in chroma


def test_no_plaintext_key_in_any_file_at_rest(make_memory: MemoryFactory, tmp_path: Path) -> None:
    _local_only(make_memory)
    mem = _session_one(make_memory, tmp_path)
    make_memory("s2", "kha", path=tmp_path).recall("What was my key?")
    files = _bytes_at_rest(tmp_path)
    assert len(files) >= 3  # the SQLite file and Chroma's files were read
    for path, data in files:
        assert OPENAI_KEY.encode() not in data, path
        assert SEED.encode() not in data, path
        assert b"key is 123" not in data, path
    mem.close()


def test_history_gives_the_owner_the_real_values(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = _session_one(make_memory, tmp_path)
    texts = [m.content for m in mem.history()]
    assert texts[0] == SEED
    assert OPENAI_KEY in texts[2]


async def test_async_recall_and_history_reveal_too(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    _session_one(make_memory, tmp_path)
    later = make_memory("s2", "kha", path=tmp_path)
    hits = await later.arecall("What was my API key?", k=5)
    assert any(h.text == SEED for h in hits)
    earlier = make_memory("s1", "kha", path=tmp_path)
    assert (await earlier.ahistory())[0].content == SEED


def test_another_user_gets_nothing(make_memory: MemoryFactory, tmp_path: Path) -> None:
    _session_one(make_memory, tmp_path)
    ann = make_memory("s1", "ann", path=tmp_path)
    ann.add("user", "I like hiking in the hills.")
    answer = create_recall_tool(ann).invoke({"query": "What was my API key?"})
    assert "123" not in answer and OPENAI_KEY not in answer and "SECRET_" not in answer
    ann.add("user", "[SECRET_API_KEY_000000000000] is what I typed")  # a forged placeholder
    assert "123" not in create_recall_tool(ann).invoke({"query": "what did I type"})


def test_a_placeholder_of_another_user_is_not_revealed(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = _session_one(make_memory, tmp_path)
    stored = sql_rows(mem, "SELECT content FROM tm_messages WHERE user_id = 'kha' AND seq = 0")
    stolen = stored[0].content.removeprefix("My API key is ")
    ann = make_memory("s1", "ann", path=tmp_path)
    ann.add("user", f"Someone pasted {stolen} in the chat")
    assert "123" not in create_recall_tool(ann).invoke({"query": "someone pasted"})
    assert stolen in ann.history()[0].content


def test_the_same_value_gets_the_same_placeholder_and_one_entry(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = make_memory("s1", "kha", path=tmp_path)
    first = mem.add("user", SEED)
    second = mem.add("user", "Again: my API key is 123")
    ph = PLACEHOLDER.search(first.content)
    assert ph is not None and ph.group() in second.content
    assert mem.vault is not None and mem.vault.count() == 1
    other = make_memory("s1", "ann", path=tmp_path).add("user", SEED)
    assert ph.group() not in other.content  # per user: the placeholder names no shared value


def test_placeholders_need_the_key_to_be_guessed() -> None:
    one, two = Fernet.generate_key(), Fernet.generate_key()
    assert placeholder(one, "kha", "api_key", "123") == placeholder(one, "kha", "api_key", "123")
    assert placeholder(one, "kha", "api_key", "123") != placeholder(two, "kha", "api_key", "123")
    assert placeholder(one, "kha", "api_key", "123") != placeholder(one, "ann", "api_key", "123")


def test_sealing_is_idempotent_on_its_own_placeholders() -> None:
    key = Fernet.generate_key()
    sealed = seal_text(SEED, key, "kha")
    assert sealed.text != SEED and list(sealed.entries.values()) == ["123"]
    again = seal_text(sealed.text, key, "kha")
    assert again.text == sealed.text and not again.entries


def test_key_file_is_created_with_owner_only_permissions(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    make_memory("s1", "kha", path=tmp_path)
    mode = stat.S_IMODE((tmp_path / "vault.key").stat().st_mode)
    assert mode == 0o600


def test_key_from_config_or_environment_writes_no_key_file(
    make_memory: MemoryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    mem = _session_one(make_memory, tmp_path / "a", vault_key=key)
    assert not (tmp_path / "a" / "vault.key").exists()
    assert mem.history()[0].content == SEED
    monkeypatch.setenv(KEY_ENV, key)
    same = make_memory("s1", "kha", path=tmp_path / "a")
    assert same.history()[0].content == SEED


def test_a_wrong_key_is_a_config_error(make_memory: MemoryFactory, tmp_path: Path) -> None:
    _session_one(make_memory, tmp_path, vault_key=Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="vault key"):
        make_memory("s2", "kha", path=tmp_path, vault_key=Fernet.generate_key().decode())


def test_a_lost_key_file_is_a_config_error(make_memory: MemoryFactory, tmp_path: Path) -> None:
    _session_one(make_memory, tmp_path)
    os.remove(tmp_path / "vault.key")  # a new key would be made: it cannot read the old secrets
    with pytest.raises(ConfigError, match="vault key"):
        make_memory("s2", "kha", path=tmp_path)


def test_a_malformed_key_is_a_config_error(make_memory: MemoryFactory, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a vault key"):
        make_memory("s1", "kha", path=tmp_path, vault_key="hunter2")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "vault.key").write_text("not a key\n")
    with pytest.raises(ConfigError, match="vault key file"):
        make_memory("s1", "kha", path=tmp_path / "b")


def test_a_ciphertext_that_does_not_decrypt_is_a_config_error(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = _session_one(make_memory, tmp_path)
    forged = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    from tm_reliability import sql_execute

    sql_execute(mem, "UPDATE tm_vault SET ciphertext = :c", c=forged)
    with pytest.raises(ConfigError, match="vault key"):
        mem.history()


def test_forget_message_erases_its_vault_entry(make_memory: MemoryFactory, tmp_path: Path) -> None:
    mem = make_memory("s1", "kha", path=tmp_path)
    seed = mem.add("user", SEED)
    mem.add("user", f"The OpenAI one is {OPENAI_KEY}.")
    assert mem.vault is not None and mem.vault.count() == 2
    assert mem.forget(message_id=seed.id) == 1
    assert mem.vault.count() == 1
    assert "123" not in create_recall_tool(make_memory("s2", "kha", path=tmp_path)).invoke(
        {"query": "What was my API key?"}
    )


def test_an_entry_another_message_still_holds_survives_forget(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = make_memory("s1", "kha", path=tmp_path)
    seed = mem.add("user", SEED)
    make_memory("s2", "kha", path=tmp_path).add("user", "Reminder: my API key is 123")
    mem.forget(message_id=seed.id)
    assert mem.vault is not None and mem.vault.count() == 1
    assert make_memory("s2", "kha", path=tmp_path).history()[0].content.endswith("is 123")


def test_forget_user_and_clear_erase_the_users_entries(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = _session_one(make_memory, tmp_path)
    ann = make_memory("s1", "ann", path=tmp_path)
    ann.add("user", "My API key is 456")
    mem.forget(user_id="kha")
    assert sql_rows(mem, "SELECT * FROM tm_vault WHERE user_id = 'kha'") == []
    assert ann.history()[0].content == "My API key is 456"
    ann.clear()
    assert sql_rows(mem, "SELECT * FROM tm_vault") == []


def test_redact_policies_are_unchanged(make_memory: MemoryFactory, tmp_path: Path) -> None:
    mem = make_memory("s1", "kha", path=tmp_path, secrets="redact")
    assert mem.vault is None and mem.add("user", SEED).content == SEED
    assert not (tmp_path / "vault.key").exists()


def test_metadata_strings_are_sealed_too(make_memory: MemoryFactory, tmp_path: Path) -> None:
    """An adapter's raw copy of an item (OpenAI Agents keeps one in metadata) holds no value."""
    mem = make_memory("s1", "kha", path=tmp_path)
    item = {
        "agents_item": {"role": "user", "content": [{"text": f"My OpenAI key is {OPENAI_KEY}"}]}
    }
    mem.add("user", f"My OpenAI key is {OPENAI_KEY}", metadata=item)
    rows = sql_rows(mem, "SELECT metadata FROM tm_messages WHERE user_id = 'kha'")
    assert OPENAI_KEY not in rows[0].metadata and "[SECRET_API_KEY_" in rows[0].metadata
    assert mem.history()[0].metadata == item
    first = mem.history()[0]
    assert mem.forget(message_id=first.id) == 1
    assert mem.vault is not None and mem.vault.count() == 0
