"""What a new user hits first: LangChain's own fake models, wrong tool sources, plain scores."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import ScriptedChatModel

from langchain_tiered_memory import RecallMemoryTool, TieredMemoryMiddleware, create_recall_tool
from langchain_tiered_memory.middleware import can_bind_tools
from tiered_memory import TieredMemory

RUN = {"configurable": {"thread_id": "s1", "user_id": "kha"}}


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: FakeListChatModel(responses=["Hello Kha."]), id="FakeListChatModel"),
        pytest.param(
            lambda: GenericFakeChatModel(messages=iter([AIMessage("Hello Kha.")])),
            id="GenericFakeChatModel",
        ),
    ],
)
def test_a_model_that_cannot_bind_tools_runs_with_the_middleware(
    model: Any, memory_kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    middleware = TieredMemoryMiddleware(**memory_kwargs)
    agent = create_agent(model(), tools=[], middleware=[middleware])
    with caplog.at_level(logging.WARNING, logger="langchain_tiered_memory.middleware"):
        state = agent.invoke({"messages": [HumanMessage("My name is Kha.")]}, RUN)
    assert state["messages"][-1].text == "Hello Kha."
    assert [m.content for m in middleware.memory_for("kha", "s1").history()] == [
        "My name is Kha.",
        "Hello Kha.",
    ]
    assert "recall_tool=False" in caplog.text


def test_the_warning_is_given_once_per_model_type(
    memory_kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    middleware = TieredMemoryMiddleware(**memory_kwargs)
    agent = create_agent(
        FakeListChatModel(responses=["a", "b"]),
        tools=[],
        middleware=[middleware],
        checkpointer=InMemorySaver(),
    )
    with caplog.at_level(logging.WARNING, logger="langchain_tiered_memory.middleware"):
        agent.invoke({"messages": [HumanMessage("one")]}, RUN)
        agent.invoke({"messages": [HumanMessage("two")]}, RUN)
    assert caplog.text.count("cannot bind tools") == 1


def test_recall_tool_false_gives_no_warning(
    memory_kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    middleware = TieredMemoryMiddleware(recall_tool=False, **memory_kwargs)
    assert middleware.tools == []
    agent = create_agent(FakeListChatModel(responses=["ok"]), tools=[], middleware=[middleware])
    with caplog.at_level(logging.WARNING, logger="langchain_tiered_memory.middleware"):
        agent.invoke({"messages": [HumanMessage("hi")]}, RUN)
    assert "cannot bind tools" not in caplog.text


def test_a_tool_calling_model_still_gets_the_recall_tool(memory_kwargs: dict[str, Any]) -> None:
    model = ScriptedChatModel(responder=lambda messages: "ok")
    agent = create_agent(model, tools=[], middleware=[TieredMemoryMiddleware(**memory_kwargs)])
    agent.invoke({"messages": [HumanMessage("hi")]}, RUN)
    assert model.tool_names == ["recall_memory"]


def test_can_bind_tools_tells_fakes_from_tool_calling_models() -> None:
    assert not can_bind_tools(FakeListChatModel(responses=["a"]))
    assert not can_bind_tools(GenericFakeChatModel(messages=iter([])))
    assert can_bind_tools(ScriptedChatModel(responder=lambda messages: "ok"))
    assert not can_bind_tools(object())


def test_create_recall_tool_accepts_the_middleware(
    memory_kwargs: dict[str, Any], make_core_memory: Any
) -> None:
    earlier = make_core_memory(session_id="monday")
    earlier.add("user", "My dog is called Biscuit.")
    earlier.close()
    middleware = TieredMemoryMiddleware(recall_tool=False, **memory_kwargs)
    recall = create_recall_tool(middleware, name="search_memory", k=3)

    def respond(messages: list[Any]) -> AIMessage | str:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return f"From memory: {last.text}"
        call = {"name": "search_memory", "args": {"query": "my dog"}, "id": "c1"}
        return AIMessage("", tool_calls=[{**call, "type": "tool_call"}])

    model = ScriptedChatModel(responder=respond)
    agent = create_agent(model, tools=[recall], middleware=[middleware])
    state = agent.invoke(
        {"messages": [HumanMessage("What is my dog called?")]},
        {"configurable": {"thread_id": "tuesday", "user_id": "kha"}},
    )
    assert model.tool_names == ["search_memory"]
    results = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert len(results) == 1 and "Biscuit" in results[0].text
    assert results[0].status == "success"


@pytest.mark.parametrize("source", [42, "kha", None])
def test_a_wrong_tool_source_is_rejected_at_creation(source: Any) -> None:
    with pytest.raises(TypeError, match="pass a TieredMemory, a TieredChatMessageHistory"):
        create_recall_tool(source)
    with pytest.raises(ValueError, match="TieredMemoryMiddleware"):
        RecallMemoryTool(memory=source)


def test_a_bad_k_is_rejected_at_creation(make_core_memory: Any) -> None:
    memory = make_core_memory()
    for k in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            create_recall_tool(memory, k=k)


def test_recall_scores_are_plain_floats(make_core_memory: Any) -> None:
    earlier: TieredMemory = make_core_memory(session_id="monday")
    earlier.add("user", "My dog is called Biscuit.")
    earlier.close()
    hits = make_core_memory(session_id="tuesday").recall("my dog", k=3)
    assert hits
    assert all(type(hit.score) is float for hit in hits)
