"""The native async twins behave like the sync methods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM

from llamaindex_tiered_memory import TieredChatMemory

MemoryFactory = Callable[..., TieredChatMemory]


async def test_async_put_get_and_get_all(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    await memory.aput(ChatMessage(role="user", content="hi"))
    await memory.aput_messages([ChatMessage(role="assistant", content="hello")])
    assert [m.content for m in await memory.aget()] == ["hi", "hello"]
    assert await memory.aget_all() == memory.get_all()


async def test_async_set_stores_only_new_messages(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    await memory.aput(ChatMessage(role="user", content="hi"))
    await memory.aset([*await memory.aget(), ChatMessage(role="user", content="again")])
    assert [m.content for m in await memory.aget_all()] == ["hi", "again"]


async def test_async_reset_deletes_the_session(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    await memory.aput(ChatMessage(role="user", content="hi"))
    await memory.areset()
    assert await memory.aget_all() == []


async def test_async_get_matches_sync_get_after_a_long_chat(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=150, summary_token_limit=100)
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=10), memory=memory)
    await engine.achat("My name is Kha.")
    for turn in range(20):
        await engine.achat(f"Question {turn}: what is a good embedding size for project {turn}?")
    assert await memory.aget() == memory.get()
    assert await memory.aget(initial_token_count=50) == memory.get(initial_token_count=50)
    assert "Kha" in (memory.get()[0].content or "")
    assert len(await memory.aget_all()) == 42


async def test_async_methods_do_not_block_the_event_loop(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    for turn in range(5):
        await memory.aput(ChatMessage(role="user", content=f"message {turn}"))
    task.cancel()
    assert ticks > 0
