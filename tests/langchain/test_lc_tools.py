"""The recall tool: LangChain standard tool tests, cross-session recall, user isolation."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_tiered_memory import RecallMemoryTool, TieredChatMessageHistory, create_recall_tool
from langchain_tiered_memory.tools import parse_when
from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory, default_embedder

_STANDARD_DIR = tempfile.mkdtemp(prefix="tm-lc-standard-")


def _standard_memory() -> TieredMemory:
    memory = TieredMemory(
        session_id="old",
        user_id="kha",
        path=_STANDARD_DIR,
        config=MemoryConfig(compaction="inline", window_tokens=64, summary_tokens=64),
        embedder=HashEmbedder(),
    )
    if not memory.history():
        memory.add("user", "My dog is called Biscuit.")
    return memory


class TestRecallToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RecallMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": _standard_memory()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "the name of my dog", "k": 3, "since": "2020-01-01"}


class TestRecallToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RecallMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": _standard_memory()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "the name of my dog", "k": 3, "since": "2020-01-01"}


def _semantic_embedder() -> Any:
    """The embedded MiniLM when it loads offline, else the hashing embedder."""
    try:
        embedder = default_embedder()
        embedder.embed_query("probe")
    except Exception:
        return HashEmbedder()
    return embedder


@pytest.fixture
def histories(tmp_path: Any) -> Callable[[str, str], TieredChatMessageHistory]:
    embedder = _semantic_embedder()
    config = MemoryConfig(compaction="inline", window_tokens=64, summary_tokens=64)

    def make(user_id: str, session_id: str) -> TieredChatMessageHistory:
        return TieredChatMessageHistory(
            session_id=session_id,
            user_id=user_id,
            path=tmp_path,
            config=config,
            embeddings=embedder,
        )

    return make


def test_recall_finds_an_earlier_session_of_the_same_user_only(
    histories: Callable[[str, str], TieredChatMessageHistory],
) -> None:
    histories("kha", "monday").add_messages(
        [HumanMessage("My dog is called Biscuit."), AIMessage("Biscuit is a lovely name.")]
    )
    histories("kha", "monday").add_messages(
        [HumanMessage("I am flying to Lisbon in March."), AIMessage("Enjoy Lisbon.")]
    )
    histories("ann", "monday").add_messages([HumanMessage("My dog is called Rex.")])
    today = histories("kha", "tuesday")
    today.add_messages([HumanMessage("Hi again!")])

    answer = create_recall_tool(today).invoke({"query": "What is the name of my dog?", "k": 2})

    assert "Biscuit" in answer
    assert "session: monday" in answer
    assert "Rex" not in answer
    other = create_recall_tool(histories("ann", "tuesday")).invoke({"query": "dog name"})
    assert "Rex" in other and "Biscuit" not in other


async def test_async_recall_matches_sync(
    histories: Callable[[str, str], TieredChatMessageHistory],
) -> None:
    await histories("kha", "monday").aadd_messages([HumanMessage("My dog is called Biscuit.")])
    tool = create_recall_tool(histories("kha", "tuesday").memory)
    arguments = {"query": "dog name", "k": 1}
    assert await tool.ainvoke(arguments) == tool.invoke(arguments)
    assert "Biscuit" in await tool.ainvoke(arguments)


def test_recall_with_nothing_stored_says_so(
    histories: Callable[[str, str], TieredChatMessageHistory],
) -> None:
    answer = create_recall_tool(histories("kha", "new")).invoke({"query": "anything"})
    assert answer == "No relevant memories found in earlier conversations."


def test_recall_date_range_filters(
    histories: Callable[[str, str], TieredChatMessageHistory],
) -> None:
    history = histories("kha", "monday")
    history.add_messages([HumanMessage("My dog is called Biscuit.")])
    tool = create_recall_tool(histories("kha", "tuesday"))
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    today = datetime.now(timezone.utc).date().isoformat()
    assert "Biscuit" in tool.invoke({"query": "dog", "since": today, "until": today})
    assert "Biscuit" not in tool.invoke({"query": "dog", "since": tomorrow})


def test_bad_date_is_reported_to_the_model_not_raised(
    histories: Callable[[str, str], TieredChatMessageHistory],
) -> None:
    tool = create_recall_tool(histories("kha", "s1"))
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "c1",
            "name": "recall_memory",
            "args": {"query": "dog", "since": "last tuesday"},
        }
    )
    assert isinstance(message, ToolMessage)
    assert "ISO 8601" in message.content


def test_tool_schema_and_description() -> None:
    tool = create_recall_tool(lambda: None, name="memory_search", k=3)  # type: ignore[arg-type,return-value]
    assert tool.name == "memory_search"
    assert set(tool.args) == {"query", "k", "since", "until"}
    assert tool.tool_call_schema.model_json_schema()["required"] == ["query"]
    assert "ONLY when the user refers to something" in tool.description


def test_parse_when_accepts_dates_datetimes_and_zulu() -> None:
    assert parse_when("2025-01-31") == datetime(2025, 1, 31, tzinfo=timezone.utc)
    end = parse_when("2025-01-31", end_of_day=True)
    assert end is not None and end.date().isoformat() == "2025-01-31" and end.hour == 23
    assert parse_when("2025-01-31T12:30:00Z") == datetime(2025, 1, 31, 12, 30, tzinfo=timezone.utc)
    assert parse_when(None) is None
