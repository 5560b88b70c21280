"""save_memory / update_memory / delete_memory as LlamaIndex FunctionTools, and in an agent."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from llamaindex_tiered_memory import TieredChatMemory, create_memory_tools, create_recall_tool
from tiered_memory.recall.tool import MEMORY_WRITE_RESULT_PREFIX
from tiered_memory.recall.writes import list_memories

MemoryFactory = Callable[..., TieredChatMemory]
LLMFactory = Callable[[str, dict[str, Any]], MockFunctionCallingLLM]


def _tools(memory: TieredChatMemory) -> dict[str, FunctionTool]:
    return {tool.metadata.name: tool for tool in create_memory_tools(memory)}  # type: ignore[misc]


def _id(answer: object) -> str:
    found = re.search(r"id (\S+):", str(answer))
    assert found is not None, answer
    return found.group(1)


def test_the_tools_have_the_core_names_descriptions_and_schemas(make_memory: MemoryFactory) -> None:
    tools = _tools(make_memory())
    assert sorted(tools) == ["delete_memory", "save_memory", "update_memory"]
    schema = tools["update_memory"].metadata.get_parameters_dict()
    assert set(schema["properties"]) == {"id", "text"} and set(schema["required"]) == {"id", "text"}
    assert "long-term memory" in tools["save_memory"].metadata.description


def test_save_then_recall_from_a_later_session(make_memory: MemoryFactory) -> None:
    answer = _tools(make_memory())["save_memory"].call(text="The user is allergic to peanuts.")
    assert str(answer).startswith(MEMORY_WRITE_RESULT_PREFIX)
    recalled = create_recall_tool(make_memory("later")).call(query="is the user allergic")
    assert "allergic to peanuts" in str(recalled) and _id(answer) in str(recalled)


def test_update_and_delete_by_id(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    tools = _tools(memory)
    first = _id(tools["save_memory"].call(text="The user lives in Paris."))
    second = _id(tools["update_memory"].call(id=first, text="The user lives in Berlin."))
    assert [(m.id, m.replaces) for m in list_memories(memory.core)] == [(second, first)]
    assert second in str(tools["delete_memory"].call(id=second))
    assert list_memories(memory.core) == []


def test_refused_writes_are_answers_and_other_users_are_out_of_reach(
    make_memory: MemoryFactory,
) -> None:
    saved = _id(_tools(make_memory())["save_memory"].call(text="The user likes jazz."))
    ann = _tools(make_memory("s1", "ann"))
    assert "no saved memory" in str(ann["delete_memory"].call(id=saved))
    assert "non-empty" in str(ann["save_memory"].call(text=""))
    assert [m.id for m in list_memories(make_memory().core)] == [saved]


async def test_async_tools(make_memory: MemoryFactory) -> None:
    tools = _tools(make_memory())
    saved = _id(await tools["save_memory"].acall(text="The user works at Acme."))
    new = _id(await tools["update_memory"].acall(id=saved, text="The user works at Globex."))
    recalled = await create_recall_tool(make_memory("later")).acall(
        query="where does the user work"
    )
    assert "Globex" in str(recalled) and "Acme" not in str(recalled)
    assert new in str(await tools["delete_memory"].acall(id=new))


async def test_a_function_agent_saves_a_memory_recalled_later(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    memory = make_memory(token_limit=500)
    llm = tool_calling_llm("save_memory", {"text": "The user is allergic to peanuts."})
    agent = FunctionAgent(tools=create_memory_tools(memory), llm=llm)
    response = await agent.run("Remember that I'm allergic to peanuts.", memory=memory)
    assert "Saved memory" in str(response)
    hits = make_memory("later").core.recall("allergic to peanuts", k=10)
    assert {h.session_id for h in hits} == {"s1", "memories"}
    assert [h.text for h in hits if h.session_id == "memories"] == [
        "The user is allergic to peanuts."
    ]
    assert not any(h.role == "tool" for h in hits)  # the tool's own result is never indexed


def test_a_wrong_memory_source_fails_at_creation() -> None:
    with pytest.raises(TypeError):
        create_memory_tools(42)  # type: ignore[arg-type]
