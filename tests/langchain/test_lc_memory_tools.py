"""save_memory / update_memory / delete_memory as LangChain tools: standard tests and behaviour."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_tiered_memory import (
    DeleteMemoryTool,
    SaveMemoryTool,
    TieredChatMessageHistory,
    UpdateMemoryTool,
    create_memory_tools,
    create_recall_tool,
)
from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory
from tiered_memory.recall.tool import MEMORY_WRITE_RESULT_PREFIX

_STANDARD_DIR = tempfile.mkdtemp(prefix="tm-lc-write-standard-")
CONFIG = MemoryConfig(compaction="inline", window_tokens=200, summary_tokens=64)


def _memory(path: Any = _STANDARD_DIR, user: str = "kha", session: str = "chat") -> TieredMemory:
    return TieredMemory(session, user, path=path, config=CONFIG, embedder=HashEmbedder())


class TestSaveMemoryToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return SaveMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": _memory()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"text": "The user is allergic to peanuts."}


class TestUpdateMemoryToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return UpdateMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": _memory()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"id": "3f2a9c", "text": "The user lives in Berlin."}


class TestDeleteMemoryToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DeleteMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": _memory()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"id": "3f2a9c"}


def _tools(path: Path, user: str = "kha") -> dict[str, BaseTool]:
    return {tool.name: tool for tool in create_memory_tools(_memory(path, user))}


def _id(answer: str) -> str:
    found = re.search(r"id (\S+):", answer)
    assert found is not None, answer
    return found.group(1)


def test_the_tools_have_the_core_names_and_arguments(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    assert sorted(tools) == ["delete_memory", "save_memory", "update_memory"]
    assert set(tools["update_memory"].args) == {"id", "text"}
    assert set(tools["delete_memory"].args) == {"id"}


def test_saved_memory_is_recalled_by_the_recall_tool_in_a_later_session(tmp_path: Path) -> None:
    answer = _tools(tmp_path)["save_memory"].invoke({"text": "The user is allergic to peanuts."})
    assert answer.startswith(MEMORY_WRITE_RESULT_PREFIX)
    recalled = create_recall_tool(_memory(tmp_path, session="later")).invoke(
        {"query": "Is the user allergic to anything?"}
    )
    assert "allergic to peanuts" in recalled and f"memory id: {_id(answer)}" in recalled


def test_update_and_delete_take_the_id_the_model_was_given(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    first = _id(tools["save_memory"].invoke({"text": "The user lives in Paris."}))
    updated = tools["update_memory"].invoke({"id": first, "text": "The user lives in Berlin."})
    second = _id(updated)
    recall = create_recall_tool(_memory(tmp_path, session="later"))
    found = recall.invoke({"query": "where does the user live"})
    assert "Berlin" in found and "Paris" not in found
    assert second in tools["delete_memory"].invoke({"id": second})
    assert "Berlin" not in recall.invoke({"query": "where does the user live"})


def test_a_refused_write_comes_back_to_the_model_as_text(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    assert "non-empty" in tools["save_memory"].invoke({"text": "  "})
    assert "no saved memory" in tools["delete_memory"].invoke({"id": "nope"})
    assert "no saved memory" in tools["update_memory"].invoke({"id": "nope", "text": "x"})


def test_another_users_memory_cannot_be_deleted(tmp_path: Path) -> None:
    saved = _id(_tools(tmp_path)["save_memory"].invoke({"text": "The user likes jazz."}))
    assert "no saved memory" in _tools(tmp_path, "ann")["delete_memory"].invoke({"id": saved})
    answer = create_recall_tool(_memory(tmp_path, user="ann")).invoke({"query": "jazz"})
    assert "jazz" not in answer


async def test_async_tools_write_the_same(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    saved = _id(await tools["save_memory"].ainvoke({"text": "The user works at Acme."}))
    new = _id(
        await tools["update_memory"].ainvoke({"id": saved, "text": "The user works at Globex."})
    )
    recall = create_recall_tool(_memory(tmp_path, session="later"))
    assert "Globex" in await recall.ainvoke({"query": "where does the user work"})
    assert new in await tools["delete_memory"].ainvoke({"id": new})


def test_the_write_exchange_in_the_chat_is_not_indexed_again(tmp_path: Path) -> None:
    history = TieredChatMessageHistory(
        session_id="chat", user_id="kha", path=tmp_path, config=CONFIG, embeddings=HashEmbedder()
    )
    tool = create_memory_tools(history)[0]
    call = {"id": "c1", "name": "save_memory", "args": {"text": "The user is allergic to peanuts."}}
    result = tool.invoke({"text": "The user is allergic to peanuts."})
    history.add_messages(
        [
            HumanMessage("Remember that I'm allergic to peanuts."),
            AIMessage("", tool_calls=[call]),
            ToolMessage(result, tool_call_id="c1", name="save_memory"),
        ]
    )
    hits = _memory(tmp_path, session="later").recall("allergic to peanuts", k=10)
    assert sorted(h.session_id for h in hits) == ["chat", "memories"]  # the user turn, the memory
    assert not any(MEMORY_WRITE_RESULT_PREFIX in h.text or "save_memory" in h.text for h in hits)


def test_a_wrong_memory_source_fails_at_creation() -> None:
    with pytest.raises(TypeError):
        create_memory_tools(42)  # type: ignore[arg-type]
