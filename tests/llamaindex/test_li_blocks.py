"""TieredSummaryBlock and TieredRecallBlock inside LlamaIndex's own Memory."""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.core.memory import Memory

from llamaindex_tiered_memory import TieredRecallBlock, TieredSummaryBlock
from tiered_memory import HashEmbedder

FAST = {"retry_backoff": 0.0, "summarizer_retries": 0}


def summary_block(path: Path, **kwargs: object) -> TieredSummaryBlock:
    return TieredSummaryBlock(
        user_id="kha", path=str(path), summary_token_limit=150, config=FAST, **kwargs
    )  # type: ignore[arg-type]


def recall_block(path: Path, user_id: str = "kha") -> TieredRecallBlock:
    return TieredRecallBlock(
        user_id=user_id, path=str(path), embed_model=HashEmbedder(), k=2, config=FAST
    )


def small_memory(session_id: str, *blocks: object) -> Memory:
    return Memory.from_defaults(
        session_id=session_id,
        token_limit=200,
        token_flush_size=40,
        chat_history_token_ratio=0.5,
        memory_blocks=list(blocks),  # type: ignore[arg-type]
    )


async def chat(memory: Memory, first: str, turns: int = 12) -> None:
    await memory.aput(ChatMessage(role="user", content=first))
    await memory.aput(ChatMessage(role="assistant", content="Noted."))
    for turn in range(turns):
        await memory.aput(
            ChatMessage(role="user", content=f"Question {turn}: which index suits dataset {turn}?")
        )
        await memory.aput(ChatMessage(role="assistant", content=f"For dataset {turn}, use HNSW."))


def memory_text(messages: list[ChatMessage]) -> str:
    return "\n".join(m.content or "" for m in messages if m.role == "system")


async def test_summary_block_keeps_a_fact_memory_flushed(tmp_path: Path) -> None:
    memory = small_memory("m1", summary_block(tmp_path))
    await chat(memory, "My name is Kha.")
    messages = await memory.aget()
    fifo = [m for m in messages if m.role != "system"]
    assert all("My name is Kha." not in (m.content or "") for m in fifo)  # flushed
    text = memory_text(messages)
    assert "<conversation_summary>" in text
    assert "Kha" in text


async def test_summary_block_summary_is_persisted(tmp_path: Path) -> None:
    await chat(small_memory("m1", summary_block(tmp_path)), "My name is Kha.")
    fresh = summary_block(tmp_path)  # e.g. after a restart
    assert "Kha" in await fresh.aget([], session_id="m1")
    assert await fresh.aget([], session_id="other") == ""


async def test_summary_block_uses_the_given_llm(tmp_path: Path) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=3)
    block = summary_block(tmp_path, llm=llm)
    await chat(small_memory("m1", block), "My name is Kha.")
    await block.core("m1").acompact()  # the summary is written in the background: wait for it
    assert (await block.aget([], session_id="m1")).startswith("text text text")
    assert llm.last_chat_messages  # the summary came from the LLM


async def test_summary_block_truncates_its_text(tmp_path: Path) -> None:
    block = summary_block(tmp_path)
    text = "one two three four five six seven eight"
    assert await block.atruncate(text, 3) == "one two three four five"
    assert await block.atruncate(text, 100) is None


async def test_recall_block_recalls_a_flushed_fact_in_a_later_session(tmp_path: Path) -> None:
    await chat(small_memory("monday", recall_block(tmp_path)), "My dog is called Pixel.")
    tuesday = small_memory("tuesday", recall_block(tmp_path))
    text = memory_text(await tuesday.aget(input="What is my dog called?"))
    assert "<recalled_memories>" in text
    assert "My dog is called Pixel." in text
    assert "session: monday" in text


async def test_recall_block_never_crosses_users(tmp_path: Path) -> None:
    await chat(small_memory("monday", recall_block(tmp_path)), "My dog is called Pixel.")
    bob = small_memory("bob-1", recall_block(tmp_path, user_id="bob"))
    assert "Pixel" not in memory_text(await bob.aget(input="What is my dog called?"))


async def test_a_failed_recall_leaves_the_block_empty_and_the_turn_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monday = recall_block(tmp_path)
    await chat(small_memory("monday", monday), "My dog is called Pixel.")
    await monday.core("monday").aflush()  # its vectors (and embedder) are written first
    # (without it, the other embedder could make the user's first vectors and rightly recall)
    other_model = HashEmbedder()
    other_model.name = "another-model-256"  # same size: only the recorded embedder tells
    block = TieredRecallBlock(
        user_id="kha", path=str(tmp_path), embed_model=other_model, k=2, config=FAST
    )
    tuesday = small_memory("tuesday", block)
    with caplog.at_level(logging.ERROR, "tiered_memory"):
        messages = await tuesday.aget(input="What is my dog called?")
    assert "Pixel" not in memory_text(messages)  # no recall this turn, and no exception
    assert "EmbedderChangedError" in caplog.text or "were made by embedder" in caplog.text


async def test_recall_block_is_silent_without_a_user_message(tmp_path: Path) -> None:
    block = recall_block(tmp_path)
    assert await block.aget([ChatMessage(role="assistant", content="Hi")], session_id="s") == ""


async def test_both_blocks_together_recall_each_fact_once(tmp_path: Path) -> None:
    memory = small_memory("monday", summary_block(tmp_path), recall_block(tmp_path))
    await chat(memory, "My dog is called Pixel.")
    later = small_memory("tuesday", summary_block(tmp_path), recall_block(tmp_path))
    text = memory_text(await later.aget(input="What is my dog called?"))
    assert text.count("> My dog is called Pixel.") == 1


async def test_blocks_copy_and_pickle_without_their_open_stores(tmp_path: Path) -> None:
    block = recall_block(tmp_path)
    await chat(small_memory("monday", block), "My dog is called Pixel.")
    copied = copy.deepcopy(block)
    assert copied.core("monday") is block.core("monday")  # same open session
    loaded = pickle.loads(pickle.dumps(block))
    assert loaded.embed_model is None  # live objects are not pickled
    assert loaded.user_id == "kha"
    assert len(loaded.core("monday").history()) == len(block.core("monday").history())
