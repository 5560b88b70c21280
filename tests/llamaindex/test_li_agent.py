"""TieredChatMemory inside FunctionAgent / AgentWorkflow: tool turns, Context serialization."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.workflow import Context

from llamaindex_tiered_memory import TieredChatMemory

MemoryFactory = Callable[..., TieredChatMemory]
LLMFactory = Callable[[str, dict[str, Any]], MockFunctionCallingLLM]
REPO = Path(__file__).resolve().parents[2]


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


async def test_function_agent_stores_its_tool_call_turn_whole(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    memory = make_memory(token_limit=500)
    agent = FunctionAgent(tools=[multiply], llm=tool_calling_llm("multiply", {"a": 6, "b": 7}))
    response = await agent.run("What is 6 times 7?", memory=memory)
    assert str(response) == "Tool said: 42"
    history = memory.get_all()
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    call = history[1].blocks[0]
    assert isinstance(call, ToolCallBlock) and call.tool_kwargs == {"a": 6, "b": 7}
    assert history[2].additional_kwargs["tool_call_id"] == call.tool_call_id
    assert history[2].content == "42"
    core = memory.core.history()
    assert core[1].tool_calls[0].id == core[2].tool_call_id  # the pair, in the core model


async def test_tool_turns_never_split_in_the_window(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    memory = make_memory(token_limit=120, summary_token_limit=100)
    agent = FunctionAgent(tools=[multiply], llm=tool_calling_llm("multiply", {"a": 6, "b": 7}))
    for turn in range(8):
        await agent.run(f"Turn {turn}: what is 6 times 7, once more?", memory=memory)
        window = [m for m in await memory.aget() if m.role != MessageRole.SYSTEM]
        assert window[0].role != MessageRole.TOOL
        call_ids = {
            b.tool_call_id for m in window for b in m.blocks if isinstance(b, ToolCallBlock)
        }
        results = [m.additional_kwargs["tool_call_id"] for m in window if m.role == "tool"]
        assert set(results) <= call_ids
    assert len(memory.get_all()) == 32


async def test_context_round_trip_keeps_the_memory(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    memory = make_memory(token_limit=500)
    agent = FunctionAgent(tools=[multiply], llm=tool_calling_llm("multiply", {"a": 2, "b": 3}))
    ctx = Context(agent)
    await agent.run("What is 2 times 3?", memory=memory, ctx=ctx)

    payload = json.loads(json.dumps(ctx.to_dict()))
    assert "Tool said" not in json.dumps(payload)  # the memory is ids, not messages
    restored_ctx = Context.from_dict(agent, payload)
    restored = await restored_ctx.store.get("memory")
    assert isinstance(restored, TieredChatMemory)
    assert (restored.session_id, restored.user_id) == (memory.session_id, memory.user_id)

    await agent.run("And again?", ctx=restored_ctx)
    history = memory.get_all()
    assert [m.content for m in history if m.role == "user"] == ["What is 2 times 3?", "And again?"]
    assert len(history) == 8


async def test_agent_workflow_runs_with_the_memory(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    memory = make_memory(token_limit=500)
    agent = FunctionAgent(
        name="calculator",
        description="Multiplies numbers.",
        tools=[multiply],
        llm=tool_calling_llm("multiply", {"a": 3, "b": 3}),
    )
    workflow = AgentWorkflow(agents=[agent])
    response = await workflow.run(user_msg="What is 3 times 3?", memory=memory)
    assert "9" in str(response)
    assert [m.role for m in memory.get_all()] == ["user", "assistant", "tool", "assistant"]


async def test_agent_chat_history_is_not_duplicated(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    memory = make_memory(token_limit=500)
    agent = FunctionAgent(tools=[multiply], llm=tool_calling_llm("multiply", {"a": 1, "b": 1}))
    await agent.run("first", memory=memory)
    await agent.run("second", memory=memory, chat_history=await memory.aget_all())
    assert [m.content for m in memory.get_all() if m.role == "user"] == ["first", "second"]


def test_memory_restores_in_a_fresh_process(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    memory.put_messages(
        [
            ChatMessage(role="user", content="My name is Kha."),
            ChatMessage(role="assistant", content="Hi"),
        ]
    )
    script = (
        "import json, sys\n"
        "from llamaindex_tiered_memory import TieredChatMemory\n"
        "memory = TieredChatMemory.from_json(sys.stdin.read())\n"
        "print(json.dumps([m.content for m in memory.get_all()]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=memory.to_json(),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["My name is Kha.", "Hi"]
