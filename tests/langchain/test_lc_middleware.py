"""TieredMemoryMiddleware under langchain.agents.create_agent."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain.agents.middleware import ModelResponse, wrap_model_call
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import ScriptedChatModel, echo

from langchain_tiered_memory import TieredMemoryMiddleware
from langchain_tiered_memory.convert import to_core_messages
from tiered_memory import ConfigError, ExtractiveSummarizer, HashEmbedder, MemoryConfig
from tiered_memory.tokens import token_counter

SYSTEM = "Be brief."


def _run_config(thread: str = "t1", user: str = "kha") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, "user_id": user}}


def _agent(
    model: ScriptedChatModel,
    middleware: TieredMemoryMiddleware,
    *,
    tools: list[Any] | None = None,
    checkpointer: bool = True,
    extra: list[Any] | None = None,
    **kwargs: Any,
) -> Any:
    return create_agent(
        model,
        tools=tools or [],
        system_prompt=SYSTEM,
        middleware=[middleware, *(extra or [])],
        checkpointer=InMemorySaver() if checkpointer else None,
        **kwargs,
    )


@pytest.fixture
def middleware(memory_kwargs: dict[str, Any]) -> TieredMemoryMiddleware:
    return TieredMemoryMiddleware(**memory_kwargs)


def _say(agent: Any, text: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return agent.invoke({"messages": [HumanMessage(text)]}, config or _run_config(), **kwargs)


def _pairs_are_whole(messages: list[BaseMessage]) -> bool:
    issued: dict[str, int] = {}
    answered: set[str] = set()
    for index, message in enumerate(messages):
        if isinstance(message, AIMessage):
            issued.update({call["id"]: index for call in message.tool_calls})
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in issued:
                return False
            answered.add(message.tool_call_id)
    return set(issued) == answered


# --- what the model sees ----------------------------------------------------------------------


def test_model_sees_summary_in_system_message_and_only_the_window(
    middleware: TieredMemoryMiddleware, small_config: MemoryConfig
) -> None:
    model = ScriptedChatModel(responder=echo)
    agent = _agent(model, middleware)
    _say(agent, "My name is Kha.")
    for turn in range(15):
        state = _say(agent, f"Tell me something about topic {turn}")
    prompt = model.calls[-1]
    assert isinstance(prompt[0], SystemMessage)
    assert prompt[0].text.startswith(SYSTEM + "\n\nPrevious conversation summary:")
    assert "Kha" in prompt[0].text
    assert not any(isinstance(m, SystemMessage) for m in prompt[1:])
    assert len(prompt) < len(state["messages"])
    counter = token_counter(small_config.model)
    budget = small_config.window_tokens + small_config.summary_tokens + 40
    assert max(counter.count_messages(to_core_messages(p)) for p in model.calls) <= budget


def test_agent_state_keeps_every_message(middleware: TieredMemoryMiddleware) -> None:
    agent = _agent(ScriptedChatModel(responder=echo), middleware)
    for turn in range(15):
        state = _say(agent, f"Tell me something about topic {turn}")
    assert len(state["messages"]) == 30
    assert state["messages"][0].text == "Tell me something about topic 0"


def test_each_message_is_stored_once(middleware: TieredMemoryMiddleware) -> None:
    agent = _agent(ScriptedChatModel(responder=echo), middleware)
    for turn in range(6):
        state = _say(agent, f"Message {turn}")
    stored = middleware.memory_for("kha", "t1").history()
    assert [m.id for m in stored] == [m.id for m in state["messages"]]


def test_a_new_middleware_does_not_store_the_state_again(
    memory_kwargs: dict[str, Any],
) -> None:
    saver = InMemorySaver()
    model = ScriptedChatModel(responder=echo)
    first = TieredMemoryMiddleware(**memory_kwargs)
    agent = create_agent(model, middleware=[first], checkpointer=saver)
    _say(agent, "one")
    second = TieredMemoryMiddleware(**memory_kwargs)  # e.g. after a restart
    agent = create_agent(model, middleware=[second], checkpointer=saver)
    _say(agent, "two")
    contents = [m.content for m in second.memory_for("kha", "t1").history()]
    assert contents == ["one", "Noted: one", "two", "Noted: two"]


def test_without_checkpointer_the_memory_carries_the_conversation(
    middleware: TieredMemoryMiddleware,
) -> None:
    model = ScriptedChatModel(responder=echo)
    agent = _agent(model, middleware, checkpointer=False)
    _say(agent, "My name is Kha.")
    state = _say(agent, "What is my name?")
    assert len(state["messages"]) == 2  # this run only
    assert [m.text for m in model.calls[-1][1:]] == [
        "My name is Kha.",
        "Noted: My name is Kha.",
        "What is my name?",
    ]


def test_answers_without_ids_get_one_shared_by_state_and_memory(
    middleware: TieredMemoryMiddleware,
) -> None:
    @wrap_model_call
    def drop_ids(request: Any, handler: Callable[[Any], ModelResponse]) -> ModelResponse:
        response = handler(request)
        return ModelResponse(result=[m.model_copy(update={"id": None}) for m in response.result])

    agent = _agent(ScriptedChatModel(responder=echo), middleware, extra=[drop_ids])
    state = _say(agent, "hello")
    answer = state["messages"][-1]
    assert answer.id
    assert [m.id for m in middleware.memory_for("kha", "t1").history()] == [
        state["messages"][0].id,
        answer.id,
    ]


# --- identity ---------------------------------------------------------------------------------


@dataclass
class Context:
    user_id: str


def test_user_comes_from_runtime_context(middleware: TieredMemoryMiddleware) -> None:
    agent = _agent(ScriptedChatModel(responder=echo), middleware, context_schema=Context)
    agent.invoke(
        {"messages": [HumanMessage("hi")]},
        {"configurable": {"thread_id": "t7"}},
        context=Context(user_id="ann"),
    )
    assert [m.content for m in middleware.memory_for("ann", "t7").history()] == [
        "hi",
        "Noted: hi",
    ]


def test_constructor_defaults_fill_missing_ids(memory_kwargs: dict[str, Any]) -> None:
    middleware = TieredMemoryMiddleware(user_id="kha", session_id="default", **memory_kwargs)
    agent = _agent(ScriptedChatModel(responder=echo), middleware, checkpointer=False)
    agent.invoke({"messages": [HumanMessage("hi")]})
    assert len(middleware.memory_for("kha", "default").history()) == 2


def test_missing_user_is_a_config_error(middleware: TieredMemoryMiddleware) -> None:
    agent = _agent(ScriptedChatModel(responder=echo), middleware)
    with pytest.raises(ConfigError, match="user"):
        agent.invoke({"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "t1"}})


# --- recall -----------------------------------------------------------------------------------


def _recall_when_asked(messages: list[BaseMessage]) -> AIMessage | str:
    """Call the recall tool only when the user says "remember"; then answer from its result."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return f"From memory: {last.text}"
    if "remember" in last.text.lower():
        args = {"query": "name of my dog"}
        call = {"name": "recall_memory", "args": args, "id": f"call_{len(messages)}"}
        return AIMessage("", tool_calls=[{**call, "type": "tool_call"}])
    return echo(messages)


def test_agent_calls_recall_only_when_the_model_decides(
    middleware: TieredMemoryMiddleware,
) -> None:
    model = ScriptedChatModel(responder=_recall_when_asked)
    agent = _agent(model, middleware)
    _say(agent, "My dog is called Biscuit.", _run_config("monday"))
    _say(agent, "My dog is called Rex.", _run_config("monday", user="ann"))
    assert model.tool_names == ["recall_memory"]

    state = _say(agent, "Good morning!", _run_config("tuesday"))
    assert not any(isinstance(m, ToolMessage) for m in state["messages"])
    state = _say(agent, "Do you remember my dog?", _run_config("tuesday"))
    results = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert len(results) == 1
    assert "Biscuit" in results[0].text and "session: monday" in results[0].text
    assert "Rex" not in results[0].text
    assert state["messages"][-1].text.startswith("From memory:")
    state = _say(agent, "Thanks, bye.", _run_config("tuesday"))
    assert len([m for m in state["messages"] if isinstance(m, ToolMessage)]) == 1


async def test_async_agent_recalls_and_stores_once(middleware: TieredMemoryMiddleware) -> None:
    model = ScriptedChatModel(responder=_recall_when_asked)
    agent = _agent(model, middleware)
    await agent.ainvoke(
        {"messages": [HumanMessage("My dog is called Biscuit.")]}, _run_config("monday")
    )
    state = await agent.ainvoke(
        {"messages": [HumanMessage("Do you remember my dog?")]}, _run_config("tuesday")
    )
    assert "Biscuit" in state["messages"][-1].text
    stored = await middleware.memory_for("kha", "tuesday").ahistory()
    assert [m.id for m in stored] == [m.id for m in state["messages"]]
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]


async def test_async_model_sees_the_tiered_view(middleware: TieredMemoryMiddleware) -> None:
    model = ScriptedChatModel(responder=echo)
    agent = _agent(model, middleware)
    await agent.ainvoke({"messages": [HumanMessage("My name is Kha.")]}, _run_config())
    for turn in range(15):
        await agent.ainvoke(
            {"messages": [HumanMessage(f"Tell me something about topic {turn}")]}, _run_config()
        )
    assert "Kha" in model.calls[-1][0].text
    assert len(model.calls[-1]) < 31


# --- tool pairs -------------------------------------------------------------------------------


@tool
def lookup(size: int) -> str:
    """Return ``size`` words of filler."""
    return " ".join(f"word{i}" for i in range(size))


def _tool_script(plan: list[list[list[int]]]) -> tuple[Callable[..., Any], Callable[[int], None]]:
    """A responder following ``plan[turn][step] = sizes of the parallel lookups`` of each step."""
    position = {"turn": 0, "step": 0, "calls": 0}

    def start(turn: int) -> None:
        position.update(turn=turn, step=0)

    def respond(messages: list[BaseMessage]) -> AIMessage | str:
        steps = plan[position["turn"]]
        if position["step"] >= len(steps):
            return "Done."
        sizes = steps[position["step"]]
        position["step"] += 1
        calls = []
        for size in sizes:
            position["calls"] += 1
            calls.append(
                {
                    "name": "lookup",
                    "args": {"size": size},
                    "id": f"call_{position['calls']}",
                    "type": "tool_call",
                }
            )
        return AIMessage("", tool_calls=calls)

    return respond, start


_plans = st.lists(
    st.lists(st.lists(st.integers(1, 90), min_size=1, max_size=3), max_size=3),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=_plans, window=st.integers(40, 200))
def test_tool_pairs_are_never_split_whatever_the_window_cuts(
    plan: list[list[list[int]]], window: int
) -> None:
    respond, start = _tool_script(plan)
    model = ScriptedChatModel(responder=respond)
    with tempfile.TemporaryDirectory() as directory:
        middleware = TieredMemoryMiddleware(
            path=Path(directory),
            config=MemoryConfig(compaction="inline", window_tokens=window, summary_tokens=40),
            summarizer=ExtractiveSummarizer(),
            embeddings=HashEmbedder(),
            recall_tool=False,
        )
        agent = _agent(model, middleware, tools=[lookup])
        for turn in range(len(plan)):
            start(turn)
            state = _say(agent, f"Question {turn}?")
        history = middleware.memory_for("kha", "t1").history()
    for prompt in model.calls:
        assert _pairs_are_whole(prompt), prompt
        asked = [m for m in prompt if isinstance(m, HumanMessage)]
        assert asked and asked[-1].text.startswith("Question")  # the current question is shown
    assert [m.id for m in history] == [m.id for m in state["messages"]]


def test_an_oversized_tool_result_is_still_shown_to_the_model(
    memory_kwargs: dict[str, Any],
) -> None:
    respond, start = _tool_script([[[400]]])
    model = ScriptedChatModel(responder=respond)
    middleware = TieredMemoryMiddleware(**memory_kwargs)  # window of 120 tokens
    agent = _agent(model, middleware, tools=[lookup])
    start(0)
    _say(agent, "Look it up.")
    last = model.calls[-1]
    assert [type(m) for m in last[1:]] == [HumanMessage, AIMessage, ToolMessage]
    assert "word399" in last[-1].text
