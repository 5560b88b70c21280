"""The recall tool: across sessions of one user, never across users; same output as the core."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from llamaindex_tiered_memory import RECALL_DESCRIPTION, TieredChatMemory, create_recall_tool
from llamaindex_tiered_memory.tools import parse_when
from tiered_memory import format_recall_hits

MemoryFactory = Callable[..., TieredChatMemory]
LLMFactory = Callable[[str, dict[str, Any]], MockFunctionCallingLLM]
NO_HITS = format_recall_hits([])


def tell(memory: TieredChatMemory, text: str) -> None:
    memory.put_messages(
        [ChatMessage(role="user", content=text), ChatMessage(role="assistant", content="Noted.")]
    )


def test_recall_finds_a_fact_from_another_session_of_the_user(make_memory: MemoryFactory) -> None:
    tell(make_memory(session_id="monday"), "My dog is called Pixel.")
    tool = create_recall_tool(make_memory(session_id="tuesday"))
    output = tool.call(query="dog called Pixel").content
    assert "My dog is called Pixel." in output
    assert "session: monday" in output


def test_recall_never_returns_another_users_messages(make_memory: MemoryFactory) -> None:
    tell(make_memory(session_id="a", user_id="kha"), "My dog is called Pixel.")
    tool = create_recall_tool(make_memory(session_id="b", user_id="bob"))
    assert "Pixel" not in tool.call(query="dog called Pixel").content


def test_recall_output_is_the_core_format(make_memory: MemoryFactory) -> None:
    tell(make_memory(session_id="monday"), "My dog is called Pixel.")
    memory = make_memory(session_id="tuesday")
    output = create_recall_tool(memory, k=2).call(query="dog called Pixel").content
    assert output == format_recall_hits(memory.core.recall("dog called Pixel", k=2))


def test_recall_leaves_out_the_current_window(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    tell(memory, "My dog is called Pixel.")
    assert create_recall_tool(memory).call(query="dog called Pixel").content == NO_HITS


def test_recall_filters_by_date(make_memory: MemoryFactory) -> None:
    tell(make_memory(session_id="monday"), "My dog is called Pixel.")
    tool = create_recall_tool(make_memory(session_id="tuesday"))
    today = datetime.now(timezone.utc).date()
    assert "Pixel" in tool.call(query="dog", since=today.isoformat()).content
    assert "Pixel" in tool.call(query="dog", until=today.isoformat()).content
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert tool.call(query="dog", since=tomorrow).content == NO_HITS


def test_recall_rejects_a_bad_date(make_memory: MemoryFactory) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        create_recall_tool(make_memory()).call(query="dog", since="last tuesday")


async def test_recall_tool_is_natively_async(make_memory: MemoryFactory) -> None:
    tell(make_memory(session_id="monday"), "My dog is called Pixel.")
    tool = create_recall_tool(make_memory(session_id="tuesday"))
    output = await tool.acall(query="dog called Pixel", k=1)
    assert "Pixel" in output.content
    assert output.content.count("date:") == 1


def test_recall_tool_metadata(make_memory: MemoryFactory) -> None:
    tool = create_recall_tool(make_memory(), name="recall")
    assert isinstance(tool, FunctionTool)
    assert tool.metadata.name == "recall"
    assert tool.metadata.description == RECALL_DESCRIPTION
    assert "ONLY when the user refers to something that is not in the current" in RECALL_DESCRIPTION
    schema = tool.metadata.get_parameters_dict()
    assert set(schema["properties"]) == {"query", "k", "since", "until"}
    assert schema["required"] == ["query"]


def test_recall_tool_needs_a_positive_k(make_memory: MemoryFactory) -> None:
    with pytest.raises(ValueError, match="k must be"):
        create_recall_tool(make_memory(), k=0)


@pytest.mark.parametrize(
    ("text", "end_of_day", "expected"),
    [
        ("2025-01-31", False, datetime(2025, 1, 31, tzinfo=timezone.utc)),
        ("2025-01-31", True, datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)),
        ("2025-01-31T12:30Z", False, datetime(2025, 1, 31, 12, 30, tzinfo=timezone.utc)),
        (None, False, None),
    ],
)
def test_parse_when(text: str | None, end_of_day: bool, expected: datetime | None) -> None:
    assert parse_when(text, end_of_day=end_of_day) == expected


async def test_agent_recalls_across_sessions_with_the_tool(
    make_memory: MemoryFactory, tool_calling_llm: LLMFactory
) -> None:
    tell(make_memory(session_id="monday"), "My dog is called Pixel.")
    memory = make_memory(session_id="tuesday", token_limit=1000)
    agent = FunctionAgent(
        tools=[create_recall_tool(memory)],
        llm=tool_calling_llm("recall_memory", {"query": "name of my dog"}),
    )
    response = await agent.run("What is my dog called?", memory=memory)
    assert "My dog is called Pixel." in str(response)
    tool_result = next(m for m in memory.get_all() if m.role == "tool")
    assert "session: monday" in (tool_result.content or "")
